"""OperationOutcome issues and the one exception every FHIR interaction raises to refuse."""

from dataclasses import dataclass, field
from typing import Any

from fhir_profiles.issues import Issue
from hub.base.errors import PermanentError


def outcome(*issues: Issue) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [issue.as_json() for issue in issues]}


@dataclass
class FhirError(PermanentError):
    """A refused interaction: the HTTP status and the issues that explain it."""

    status: int
    issues: list[Issue] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, status: int, code: str, diagnostics: str, *expression: str) -> "FhirError":
        return cls(status, [Issue("error", code, diagnostics, expression)])

    def __str__(self) -> str:
        return "; ".join(issue.diagnostics for issue in self.issues)

"""One finding about a resource, as an OperationOutcome issue carries it."""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Issue:
    severity: str  # fatal | error | warning | information
    code: str  # IssueType: invalid, structure, required, value, code-invalid, not-found, ...
    diagnostics: str
    expression: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        issue: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            issue["expression"] = list(self.expression)
        return issue

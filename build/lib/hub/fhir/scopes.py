"""SMART-style scopes: ``patient/*.read``, ``user/Observation.write``, ``system/*.*`` (v1) and
the v2 letters (``patient/Observation.rs``, ``user/*.cruds``).

``user/`` and ``system/`` scopes reach every resource of their types; ``patient/`` scopes reach
only the patient named in the token and what refers to it (its compartment).
"""

from dataclasses import dataclass
from typing import Any

from store.index import reference_targets

# SMART v2 letters: create, read, update, delete, search. v1 "read" is r+s, "write" c+u+d.
CREATE, READ, UPDATE, DELETE, SEARCH = "c", "r", "u", "d", "s"
_V1 = {"read": frozenset("rs"), "write": frozenset("cud"), "*": frozenset("cruds")}


@dataclass(frozen=True)
class Scope:
    context: str  # patient | user | system
    type: str  # a resource type or "*"
    kinds: frozenset[str]  # of c r u d s

    @classmethod
    def parse(cls, text: str) -> "Scope | None":
        context, _, rest = text.partition("/")
        type_, _, action = rest.partition(".")
        if context not in ("patient", "user", "system") or not type_ or not action:
            return None  # openid, launch, fhirUser and the like: not about resources
        if action in _V1:
            kinds = _V1[action]
        elif set(action) <= set("cruds"):
            kinds = frozenset(action)
        else:
            return None
        return cls(context, type_, kinds)

    def covers(self, type_: str, kind: str) -> bool:
        return self.type in ("*", type_) and kind in self.kinds


@dataclass(frozen=True)
class Principal:
    """Who calls: their role, a name for the audit trail, their scopes, their patient."""

    role: str
    subject: str
    scopes: tuple[Scope, ...]
    patient: str | None = None  # the patient a patient/ scope is bound to

    @classmethod
    def of(
        cls, role: str, subject: str, scope_text: str, patient: str | None = None
    ) -> "Principal":
        parsed = (Scope.parse(part) for part in scope_text.split())
        return cls(role, subject, tuple(s for s in parsed if s is not None), patient)

    def access(self, type_: str, kind: str) -> str | None:
        """ "all", "compartment" (patient/ scopes only) or None (no scope covers it)."""
        contexts = {s.context for s in self.scopes if s.covers(type_, kind)}
        if contexts & {"user", "system"}:
            return "all"
        if "patient" in contexts and self.patient:
            return "compartment"
        return None


def in_compartment(resource: dict[str, Any], patient_id: str) -> bool:
    """The patient itself, or a resource with a reference search parameter naming it: the same
    test a compartment-limited search makes in the index (``SearchQuery.compartment``)."""
    if resource.get("resourceType") == "Patient":
        return resource.get("id") == patient_id
    return f"Patient/{patient_id}" in reference_targets(resource)

"""Who may do what: the caller's scopes checked for each interaction (and each transaction
entry), and the patient compartment enforced for ``patient/`` scopes."""

import orjson

from hub.fhir.interaction import FhirRequest
from hub.fhir.outcome import FhirError
from hub.fhir.paths import Target
from hub.fhir.scopes import CREATE, DELETE, READ, SEARCH, UPDATE, in_compartment
from store.resources import StoredVersion

ALL, COMPARTMENT = "all", "compartment"
_READ_OPERATIONS = {"validate", "everything", "lookup", "translate"}


def interaction_kind(request: FhirRequest, target: Target) -> str:
    """The SMART v2 letter an interaction needs."""
    if target.operation in _READ_OPERATIONS:
        return READ
    if target.search or (request.method == "GET" and target.id is None and not target.history):
        return SEARCH
    if request.method == "GET":
        return READ
    return {"POST": CREATE, "DELETE": DELETE}.get(request.method, UPDATE)


def authorize(request: FhirRequest, target: Target) -> str:
    """ALL, or COMPARTMENT when only ``patient/`` scopes cover it; 403 when nothing does.
    A transaction or batch is checked entry by entry."""
    principal = request.principal
    if principal is None or (target.type is None and not target.history):
        return ALL
    kind = interaction_kind(request, target)
    access = principal.access(target.type or "*", kind)
    if access is None:
        what = f"{target.type or 'every type'} ({kind})"
        raise FhirError.of(403, "forbidden", f"no scope of this token allows {what}")
    if access == COMPARTMENT and (target.history or request.method in ("DELETE", "PATCH")):
        raise FhirError.of(
            403, "forbidden", "a patient-scoped token may not do this; it needs a user/ scope"
        )
    return access


def visible(request: FhirRequest, version: StoredVersion) -> bool:
    """Whether a stored resource may be shown to this caller."""
    principal = request.principal
    if principal is None or version.body is None:
        return True
    grants = {principal.access(version.type, kind) for kind in (READ, SEARCH)}
    if ALL in grants:
        return True
    if COMPARTMENT in grants and principal.patient:
        return in_compartment(orjson.loads(version.body), principal.patient)
    return False


def check_writable(request: FhirRequest, resource: dict[str, object]) -> None:
    principal = request.principal
    if principal is None or not principal.patient:
        return
    type_ = str(resource.get("resourceType", ""))
    kinds = (CREATE, UPDATE)
    if any(principal.access(type_, k) == COMPARTMENT for k in kinds) and not in_compartment(
        resource, principal.patient
    ):
        raise FhirError.of(
            403, "forbidden", "a patient-scoped token writes only its patient's data"
        )

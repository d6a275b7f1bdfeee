"""Who may do what: the caller's scopes checked for each interaction (a Bundle's entries one by
one, as the same requests alone), and the patient compartment enforced for ``patient/`` scopes
in reads, writes, searches, chains, includes and counts alike."""

from dataclasses import replace

import orjson

from hub.fhir.interaction import FhirRequest
from hub.fhir.outcome import FhirError
from hub.fhir.paths import Target
from hub.fhir.scopes import CREATE, DELETE, READ, SEARCH, UPDATE, in_compartment
from store.query import Clause, SearchQuery
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
    A Bundle itself needs nothing: each of its entries is authorized when it runs."""
    if target.type is None and not target.history:
        return ALL
    kind = interaction_kind(request, target)
    access = request.principal.access(target.type or "*", kind)
    if access is None:
        what = f"{target.type or 'every type'} ({kind})"
        raise FhirError.of(403, "forbidden", f"no scope of this token allows {what}")
    if access == COMPARTMENT and (target.history or request.method in ("DELETE", "PATCH")):
        raise FhirError.of(
            403, "forbidden", "a patient-scoped token may not do this; it needs a user/ scope"
        )
    return access


def reach(request: FhirRequest, type_: str, kind: str) -> str | None:
    """None when the caller reaches every resource of the type for ``kind``, else the
    compartment (``Patient/<id>``) it is held to; 403 when no scope covers it at all."""
    principal = request.principal
    access = principal.access(type_, kind)
    if access is None:
        raise FhirError.of(403, "forbidden", f"no scope of this token allows {type_} ({kind})")
    return None if access == ALL else f"Patient/{principal.patient}"


def limited(request: FhirRequest, query: SearchQuery) -> SearchQuery:
    """The query as this caller may run it: held to its compartment, and every chain through a
    type it may search (and held to the compartment there too), so neither the matches nor
    their count say anything about resources it may not see."""
    clauses = tuple(_limited_chain(request, clause) for clause in query.clauses)
    return replace(query, clauses=clauses, compartment=reach(request, query.resource_type, SEARCH))


def _limited_chain(request: FhirRequest, clause: Clause) -> Clause:
    if clause.chain is None:
        return clause
    return replace(clause, chain_compartment=reach(request, clause.chain_type or "", SEARCH))


def visible(request: FhirRequest, version: StoredVersion) -> bool:
    """Whether a stored resource may be shown to this caller."""
    principal = request.principal
    if version.body is None:
        return True
    grants = {principal.access(version.type, kind) for kind in (READ, SEARCH)}
    if ALL in grants:
        return True
    if COMPARTMENT in grants and principal.patient:
        return in_compartment(orjson.loads(version.body), principal.patient)
    return False


def check_visible(request: FhirRequest, version: StoredVersion) -> None:
    if not visible(request, version):
        raise FhirError.of(403, "forbidden", "outside what this token may read")


def check_writable(request: FhirRequest, resource: dict[str, object]) -> None:
    """A patient-scoped writer writes only its patient's data."""
    principal = request.principal
    if not principal.patient:
        return
    type_ = str(resource.get("resourceType", ""))
    kinds = (CREATE, UPDATE)
    if any(principal.access(type_, k) == COMPARTMENT for k in kinds) and not in_compartment(
        resource, principal.patient
    ):
        raise FhirError.of(
            403, "forbidden", "a patient-scoped token writes only its patient's data"
        )


def check_replaceable(request: FhirRequest, current: StoredVersion) -> None:
    """An update may not take over a resource outside the writer's compartment, even when the
    new content would be inside it."""
    principal = request.principal
    if current.body is None or principal.access(current.type, UPDATE) != COMPARTMENT:
        return
    if not in_compartment(orjson.loads(current.body), principal.patient or ""):
        raise FhirError.of(
            403, "forbidden", "a patient-scoped token writes only its patient's data"
        )

"""The operations: ``$validate``, ``Patient/$everything``, ``CodeSystem/$lookup`` and
``ConceptMap/$translate`` (over the terminology stored in the hub, not a remote server)."""

from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from fhir_profiles.issues import Issue
from fhir_profiles.validation import validate
from hub.fhir.access import check_visible, visible
from hub.fhir.interaction import FhirRequest, FhirResponse
from hub.fhir.outcome import FhirError, outcome
from hub.fhir.paths import Target
from hub.fhir.references import references_in
from hub.fhir.search import bundle
from store.resources import StoredVersion

if TYPE_CHECKING:
    from hub.fhir.service import FhirService

EVERYTHING_LIMIT = 10_000
Operation = Callable[[FhirRequest, Target], Awaitable[FhirResponse]]


class Operations:
    def __init__(self, service: "FhirService") -> None:
        self.service = service
        self.resources = service.resources

    def supported(self) -> dict[tuple[str | None, str], Operation]:
        """(resource type or None for any, operation name) -> handler."""
        return {
            (None, "validate"): self.validate,
            ("Patient", "everything"): self.everything,
            ("CodeSystem", "lookup"): self.lookup,
            ("ConceptMap", "translate"): self.translate,
        }

    async def handle(self, request: FhirRequest, target: Target) -> FhirResponse:
        name = target.operation or ""
        table = self.supported()
        operation = table.get((target.type, name)) or (
            table.get((None, name)) if target.type else None
        )
        if operation is None:
            where = target.type or "the server"
            raise FhirError.of(404, "not-supported", f"${name} is not supported on {where}")
        return await operation(request, target)

    # --- $validate ---
    async def validate(self, request: FhirRequest, target: Target) -> FhirResponse:
        if request.method == "GET" and target.id:
            stored = await self.resources.read(target.type or "", target.id)
            check_visible(request, stored)
            resource = orjson.loads(stored.body or b"{}")
        else:
            resource = _parameter_resource(request.body)
        if not isinstance(resource, dict):
            raise FhirError.of(400, "invalid", "$validate takes a resource or a Parameters")
        if target.type and resource.get("resourceType") != target.type:
            found = resource.get("resourceType")
            raise FhirError.of(400, "invalid", f"resourceType {found!r} is not {target.type}")
        issues = validate(resource) or [Issue("information", "informational", "no issues found")]
        return FhirResponse(200, outcome(*issues))

    # --- Patient/$everything ---
    async def everything(self, request: FhirRequest, target: Target) -> FhirResponse:
        if not target.id:
            raise FhirError.of(400, "invalid", "use Patient/{id}/$everything")
        patient = await self.resources.read("Patient", target.id)
        check_visible(request, patient)
        compartment = await self.resources.referencing(f"Patient/{target.id}", EVERYTHING_LIMIT)
        seen = {(patient.type, patient.id), *((v.type, v.id) for v in compartment)}
        referenced = await self.resources.read_many(
            [key for key in dict.fromkeys(_referenced(compartment)) if key not in seen]
        )
        # only what the caller may read itself: the operation is no way around its scopes
        found = [
            version
            for version in [patient, *compartment, *referenced][:EVERYTHING_LIMIT]
            if visible(request, version)
        ]
        entries = [
            {
                "fullUrl": f"{request.base}/{v.type}/{v.id}",
                "resource": orjson.Fragment(v.body or b"{}"),
                "search": {"mode": "match"},
            }
            for v in found
        ]
        result = bundle("searchset", entries, [])
        result["total"] = len(entries)
        return FhirResponse(200, result)

    # --- CodeSystem/$lookup ---
    async def lookup(self, request: FhirRequest, target: Target) -> FhirResponse:
        params = _parameters(request)
        system, code = params.get("system"), params.get("code")
        if not system or not code:
            raise FhirError.of(400, "required", "$lookup needs system and code")
        code_system = await self.service.terminology.code_system(system)
        if code_system is None:
            raise FhirError.of(404, "not-found", f"CodeSystem {system} is not stored here")
        concept = _find_concept(code_system.get("concept", []), code)
        if concept is None:
            raise FhirError.of(404, "not-found", f"{code!r} is not a code of {system}")
        parameters = [
            {"name": "name", "valueString": code_system.get("name", system)},
            {"name": "display", "valueString": concept.get("display", code)},
        ]
        if version := code_system.get("version"):
            parameters.insert(1, {"name": "version", "valueString": version})
        for designation in concept.get("designation", []):
            parts = [{"name": "value", "valueString": designation.get("value", "")}]
            if language := designation.get("language"):
                parts.insert(0, {"name": "language", "valueCode": language})
            parameters.append({"name": "designation", "part": parts})
        return FhirResponse(200, {"resourceType": "Parameters", "parameter": parameters})

    # --- ConceptMap/$translate ---
    async def translate(self, request: FhirRequest, target: Target) -> FhirResponse:
        params = _parameters(request)
        system, code = params.get("system"), params.get("code")
        if not system or not code:
            raise FhirError.of(400, "required", "$translate needs system and code")
        criteria = [("url", params["url"])] if params.get("url") else [("source-system", system)]
        if params.get("targetsystem"):
            criteria.append(("target-system", params["targetsystem"]))
        maps = await self.service.terminology.concept_maps(tuple(criteria))
        matches = [match for cm in maps for match in _translations(cm, system, code, params)]
        parameters: list[dict[str, Any]] = [{"name": "result", "valueBoolean": bool(matches)}]
        if not matches:
            parameters.append({"name": "message", "valueString": f"no mapping for {code}"})
        parameters.extend({"name": "match", "part": match} for match in matches)
        return FhirResponse(200, {"resourceType": "Parameters", "parameter": parameters})


def _parameter_resource(body: Any) -> Any:
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        for parameter in body.get("parameter", []):
            if parameter.get("name") == "resource":
                return parameter.get("resource")
        return None
    return body


def _parameters(request: FhirRequest) -> dict[str, str]:
    """Operation inputs from the query (GET) or a Parameters body (POST), as plain strings."""
    found = dict(request.query)
    body = request.body
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        for parameter in body.get("parameter", []):
            value = next((v for k, v in parameter.items() if k.startswith("value")), None)
            if isinstance(value, str | bool | int):
                found[parameter.get("name", "")] = str(value)
            elif isinstance(value, dict) and parameter.get("name") == "coding":
                found.setdefault("system", value.get("system", ""))
                found.setdefault("code", value.get("code", ""))
    return found


def _find_concept(concepts: list[dict[str, Any]], code: str) -> dict[str, Any] | None:
    for concept in concepts:
        if concept.get("code") == code:
            return concept
        if found := _find_concept(concept.get("concept", []), code):
            return found
    return None


def _translations(
    concept_map: dict[str, Any], system: str, code: str, params: dict[str, str]
) -> Iterator[list[dict[str, Any]]]:
    wanted_target = params.get("targetsystem")
    for group in concept_map.get("group", []):
        if group.get("source") != system or wanted_target not in (None, group.get("target")):
            continue
        for element in group.get("element", []):
            if element.get("code") != code:
                continue
            for mapped in element.get("target", []):
                coding = {"system": group.get("target"), "code": mapped.get("code")}
                if mapped.get("display"):
                    coding["display"] = mapped["display"]
                yield [
                    {"name": "equivalence", "valueCode": mapped.get("equivalence", "equivalent")},
                    {"name": "concept", "valueCoding": coding},
                    {"name": "source", "valueUri": concept_map.get("url", "")},
                ]


def _referenced(versions: Sequence[StoredVersion]) -> Iterator[tuple[str, str]]:
    """Every relative ``Type/id`` reference inside the given resources."""
    for version in versions:
        for reference in references_in(orjson.loads(version.body or b"{}")):
            kind, _, id_ = reference.partition("/")
            if id_ and "/" not in id_ and ":" not in reference:
                yield kind, id_

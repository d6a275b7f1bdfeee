"""The CapabilityStatement at ``/fhir/metadata``: built from the same registries the server
runs on (types, search parameters, operations), so it lists exactly what works."""

from datetime import UTC, datetime
from functools import cache
from typing import Any

from fhir_profiles.search_params import SUPPORTED_TYPES, params_for
from hub import __version__
from hub.fhir.audit_api import SEARCH_PARAMS as AUDIT_SEARCH_PARAMS
from store.query import MODIFIERS

INTERACTIONS = (
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)
OPERATIONS = {
    "validate": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
    "everything": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
    "lookup": "http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup",
    "translate": "http://hl7.org/fhir/OperationDefinition/ConceptMap-translate",
}
_TYPE_OPERATIONS = {
    "Patient": ("everything",),
    "CodeSystem": ("lookup",),
    "ConceptMap": ("translate",),
}


@cache
def _resources() -> list[dict[str, Any]]:
    return [_audit_resource() if t == "AuditEvent" else _resource(t) for t in SUPPORTED_TYPES]


def _audit_resource() -> dict[str, Any]:
    """AuditEvents live in the immutable audit log: read, create and a few searches."""
    params = params_for("AuditEvent")
    return {
        "type": "AuditEvent",
        "profile": "http://hl7.org/fhir/StructureDefinition/AuditEvent",
        "interaction": [{"code": code} for code in ("read", "create", "search-type")],
        "versioning": "no-version",
        "readHistory": False,
        "updateCreate": False,
        "searchParam": [
            {"name": name, "definition": params[name].url, "type": kind}
            for name, kind in AUDIT_SEARCH_PARAMS.items()
        ],
    }


def _resource(type_: str) -> dict[str, Any]:
    params = [p for p in params_for(type_).values() if p.type in MODIFIERS]
    references = sorted(p.code for p in params if p.type == "reference")
    operations = ("validate", *_TYPE_OPERATIONS.get(type_, ()))
    return {
        "type": type_,
        "profile": f"http://hl7.org/fhir/StructureDefinition/{type_}",
        "interaction": [{"code": code} for code in INTERACTIONS],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalRead": "not-supported",
        "conditionalUpdate": True,
        "conditionalDelete": "single",
        "searchInclude": ["*", *(f"{type_}:{code}" for code in references)],
        "searchRevInclude": sorted(_revincludes(type_)),
        "searchParam": [
            {"name": p.code, "definition": p.url, "type": p.type}
            for p in sorted(params, key=lambda p: p.code)
        ],
        "operation": [{"name": name, "definition": OPERATIONS[name]} for name in operations],
    }


def _revincludes(type_: str) -> set[str]:
    found = set()
    for source in SUPPORTED_TYPES:
        for param in params_for(source).values():
            if param.type == "reference" and type_ in param.targets:
                found.add(f"{source}:{param.code}")
    return found


def capability_statement(base: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": datetime.now(UTC).date().isoformat(),
        "publisher": "Jianhu",
        "kind": "instance",
        "software": {"name": "Jianhu", "version": __version__},
        "implementation": {"description": "Jianhu clinical store", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/"
                                    "restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "description": "Bearer tokens: API keys mapped to roles, or JWTs "
                    "(HS256/RS256) with SMART scopes (patient/, user/, system/; v1 and v2)",
                },
                "resource": _resources(),
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "history-system"},
                ],
            }
        ],
    }

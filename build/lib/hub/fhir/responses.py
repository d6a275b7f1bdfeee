"""Building the responses of single-resource interactions: headers, Prefer, stored bytes."""

from email.utils import format_datetime
from typing import Any

from fhir_profiles.issues import Issue
from hub.fhir.interaction import FhirRequest, FhirResponse
from hub.fhir.outcome import outcome
from store.resources import StoredVersion


def location(base: str, version: StoredVersion) -> str:
    return f"{base}/{version.type}/{version.id}/_history/{version.version}"


def version_headers(version: StoredVersion) -> dict[str, str]:
    return {
        "ETag": version.etag,
        "Last-Modified": format_datetime(version.last_updated, usegmt=True),
    }


def resource_response(version: StoredVersion, body: Any = None) -> FhirResponse:
    """A read: the stored bytes as they are, unless ``body`` is a reduced copy."""
    return FhirResponse(200, body if body is not None else version.body, version_headers(version))


def write_response(
    request: FhirRequest, version: StoredVersion, status: int, message: str
) -> FhirResponse:
    """201/200 for a write, honouring ``Prefer: return=minimal|representation|OperationOutcome``."""
    headers = {**version_headers(version), "Location": location(request.base, version)}
    preference = request.prefer("return")
    if preference == "minimal":
        return FhirResponse(status, None, headers)
    if preference == "OperationOutcome":
        return FhirResponse(
            status, outcome(Issue("information", "informational", message)), headers
        )
    return FhirResponse(status, version.body, headers)

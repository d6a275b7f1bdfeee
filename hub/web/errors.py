"""Error bodies of the HTTP APIs: a FHIR OperationOutcome, which every client here understands."""

from collections.abc import Mapping

import orjson
from aiohttp import web


def problem(
    status: int, code: str, diagnostics: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    }
    return web.Response(
        status=status,
        body=orjson.dumps(outcome),
        content_type="application/fhir+json",
        headers=headers,
    )

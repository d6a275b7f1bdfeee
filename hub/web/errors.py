"""Error bodies of the HTTP APIs: a FHIR OperationOutcome, which every client here understands;
and the one place where an unexpected failure of any route is logged with its traceback."""

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from hub.envelope import new_id
from hub.logs import log_event

log = logging.getLogger(__name__)


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


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """A bug answers 500 with an OperationOutcome and an incident id to quote; the traceback
    is in the log under that id (masked), never in the answer."""
    try:
        return await handler(request)  # type: ignore[no-any-return]
    except web.HTTPException:
        raise
    except Exception:
        incident = new_id()
        log_event(
            log,
            "request_failed",
            logging.ERROR,
            exc_info=True,
            incident=incident,
            method=request.method,
            path=request.path,
        )
        return problem(500, "exception", f"internal error, incident {incident}")

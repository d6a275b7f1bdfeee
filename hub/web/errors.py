"""Error bodies of the HTTP APIs: a FHIR OperationOutcome, which every client here understands;
and the one place where an unexpected failure of any route is logged with its traceback."""

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from hub.base.envelope import new_id
from hub.base.logs import log_event

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
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # a redirect, not an error
        # the router's own answers (no such path, a method the path does not take) in the
        # same shape as every other error, not aiohttp's plain text
        code = {404: "not-found", 405: "not-supported"}.get(exc.status, "processing")
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return problem(exc.status, code, f"{exc.reason}: {request.method} {request.path}", allow)
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


def answer_unreadable_requests_in_json() -> None:
    """A request aiohttp's parser refuses before any route sees it (a query string with raw
    Chinese instead of percent-encoding, a broken header) is answered 400 with an
    OperationOutcome, not aiohttp's plain text, and logged as one WARNING line, not an ERROR
    with a traceback: the client was at fault. aiohttp offers no hook for this answer, so its
    one method that builds it is wrapped (aiohttp is pinned; a test checks it)."""
    if getattr(RequestHandler.handle_error, "_jianhu", False):
        return
    original = RequestHandler.handle_error

    def handle_error(
        self: RequestHandler,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status != 400 or request.writer.output_size > 0:
            return original(self, request, status, exc, message)
        # the parser's first line only: the rest quotes the request, names and ids included
        text = str(getattr(exc, "message", "") or exc or message or "bad request")
        reason = text.strip().splitlines()[0].rstrip(":")[:200]
        log_event(log, "request_refused", logging.WARNING, peer=request.remote, reason=reason)
        hint = "; percent-encode the URL (RFC 3986)" if "url" in reason.lower() else ""
        response = problem(400, "structure", f"the request cannot be read: {reason}{hint}")
        response.force_close()
        return response

    handle_error._jianhu = True  # type: ignore[attr-defined]
    RequestHandler.handle_error = handle_error  # type: ignore[method-assign]

"""Every HTTP request runs under a correlation id (``hub.base.correlation``): the caller's
``X-Correlation-ID`` or ``X-Request-ID`` when it is usable, else a new one. The answer says
which in ``X-Correlation-ID``, so a client can quote it and ``jianhu trace`` finds what the
request wrote. ``POST /hl7v2`` answers with the archive id instead: that is the message's
correlation id from then on."""

from typing import Any

from aiohttp import web

from hub.base.correlation import HEADERS, Origin, current, from_headers, within
from hub.base.envelope import new_id

HEADER = HEADERS[0]


@web.middleware
async def correlation_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    origin = Origin(from_headers(request.headers) or new_id(), "http")
    with within(origin):
        response: web.StreamResponse = await handler(request)
    if not response.prepared and HEADER not in response.headers:
        response.headers[HEADER] = origin.correlation
    return response


def as_caller(subject: str) -> Origin:
    """The request's origin once the caller is known: what it writes names it in
    ``meta.source``."""
    origin = current()
    return Origin(origin.correlation if origin is not None else new_id(), subject)

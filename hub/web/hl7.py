"""HTTP intake of HL7 v2: ``POST /hl7v2`` with an ER7 message (``text/plain`` or
``x-application/hl7-v2+er7``) goes through the same ingest path as MLLP (archive, publish,
ACK); the ACK message is the response body. The character set comes from the Content-Type's
``charset`` when given, else from the listener settings."""

from aiohttp import web

from hub.hl7v2.ingest import Ingest
from hub.settings import Role
from hub.web.auth import allow
from hub.web.bodies import read_body
from hub.web.correlation import HEADER as CORRELATION_HEADER
from hub.web.errors import problem
from hub.web.keys import RUNTIME

ER7 = "x-application/hl7-v2+er7"
ACCEPTED_TYPES = (ER7, "text/plain", "application/hl7-v2")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/hl7v2", intake)


@allow(Role.SYSTEM)
async def intake(request: web.Request) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    if request.content_type not in ACCEPTED_TYPES:
        return problem(415, "not-supported", f"send HL7 v2 as {ER7} or text/plain")
    listener = runtime.settings.hl7.listeners[0]
    limit = listener.max_message_bytes
    raw = await read_body(request, limit)
    if raw is None:
        return problem(413, "too-costly", f"the message is over {limit} bytes")
    if request.charset:
        listener = listener.model_copy(update={"charset": request.charset, "trust_msh18": False})
    ingest = Ingest(
        runtime.publisher, runtime.archive, listener, runtime.settings.hl7.message_types
    )
    answer = await ingest.handle(raw, request.remote or "")
    # the archive id is the message's correlation id: what ``jianhu trace`` takes
    traced = {CORRELATION_HEADER: answer.archive_id} if answer.archive_id else None
    if answer.ack is None:
        if answer.close:  # archive or bus unavailable: nothing was acknowledged
            return problem(503, "transient", "the message was not accepted; send it again")
        return web.Response(status=204, headers=traced)  # MSH-15 NE: no accept ACK wanted
    return web.Response(
        body=answer.ack.encode(answer.charset, errors="replace"),
        content_type=ER7,
        charset=answer.charset,
        headers=traced,
    )

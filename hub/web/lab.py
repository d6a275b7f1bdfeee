"""The lab turnaround big screen (检验标本全程监控大屏, S8) and its API.

``GET /lab/screen`` the page, its style and script under ``/lab/static/`` (files in
``hub/web/static/lab/``, nothing from a CDN: hospital networks have no internet), with no data in
them, so they need no token: a personal view asks for one in the page;
``GET /lab/overview`` the JSON snapshot; ``GET /lab/stream`` the live changes as Server-Sent
Events; ``POST /lab/alerts/{id}/ack`` a TAT alert taken in charge (``{"by", "note"}``);
``POST /lab/critical/{id}/ack`` a critical value reported to a clinician who read it back
(``{"by": {"number", "name"}, "clinician": {"number", "name"}, "read_back"}``).

With ``JIANHU_LAB__OPEN_SCREEN=true`` the wall display on the lab's trusted network reads the
screen without a token; acknowledgements always need one and are audited."""

import asyncio
import contextlib
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from hub.lab.critical_alerts import AlertStateError, Staff, UnknownAlertError
from hub.lab.screen import KPI_RULE
from hub.lab.service import LabService
from hub.lab.settings import lab_settings
from hub.lab.tat import AlertError
from hub.settings import Role
from hub.web.auth import RequestHandler, allow
from hub.web.errors import problem
from hub.web.keys import PRINCIPAL, RUNTIME

HEARTBEAT_S = 15.0  # a comment line: proxies keep the stream open, a gone screen is noticed
READERS = (Role.SCREEN, Role.CLINICIAN, Role.OPS)
ACKNOWLEDGERS = (Role.CLINICIAN, Role.OPS)
STATISTICS_READERS = (Role.CLINICIAN, Role.OPS, Role.SCREEN)


def add_routes(app: web.Application) -> None:
    open_screen = lab_settings(app[RUNTIME].settings).open_screen

    def reading(handler: RequestHandler) -> RequestHandler:
        return handler if open_screen else allow(*READERS)(_own(handler))

    app.router.add_get("/lab/screen", screen)  # the page holds no data: it asks for a token
    app.router.add_static("/lab/static", STATIC, name="lab-static")
    app.router.add_get("/lab/overview", reading(overview))
    app.router.add_get("/lab/stream", reading(stream))
    app.router.add_get("/lab/statistics", allow(*STATISTICS_READERS)(statistics))
    app.router.add_post("/lab/alerts/{id:.+}/ack", allow(*ACKNOWLEDGERS)(acknowledge_tat))
    app.router.add_post("/lab/critical/{id}/ack", allow(*ACKNOWLEDGERS)(acknowledge_critical))
    app.on_shutdown.append(_close_streams)


def _own(handler: RequestHandler) -> RequestHandler:
    """A separate function to mark, so the open and the guarded routes never share a mark."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        return await handler(request)

    return guarded


def _service(request: web.Request) -> LabService | None:
    """The lab service when this process holds the lab queues; a standby's memory is stale,
    so it neither shows nor takes acknowledgements (a load balancer's check moves on)."""
    service = request.app[RUNTIME].lab
    return service if service is not None and service.active else None


def _no_service() -> web.Response:
    return problem(
        503,
        "transient",
        "the lab screen is served by the process that holds the lab queues (lab.fhir, lab.hl7);"
        " this process does not, or is their standby",
    )


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


async def screen(request: web.Request) -> web.StreamResponse:
    return web.Response(
        text=_page(),
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-cache", "Content-Security-Policy": CSP},
    )


async def overview(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    if service is None:
        return _no_service()
    return _json(service.view.overview())


async def statistics(request: web.Request) -> web.StreamResponse:
    """TAT statistics per department, test group and day; ``?rule=`` names another span."""
    service = _service(request)
    if service is None:
        return _no_service()
    try:
        return _json(service.view.statistics(request.query.get("rule", KPI_RULE)))
    except KeyError:
        return problem(400, "invalid", f"no TAT rule {request.query.get('rule')!r}")


async def stream(request: web.Request) -> web.StreamResponse:
    """One queue per connection; a None from the service ends the stream (shutdown)."""
    service = _service(request)
    if service is None:
        return _no_service()
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx in front must not hold events back
        }
    )
    queue = service.subscribe()
    try:
        await response.prepare(request)
        await response.write(b"retry: 2000\n: connected\n\n")
        while True:
            try:
                async with asyncio.timeout(HEARTBEAT_S):
                    event = await queue.get()
            except TimeoutError:
                await response.write(b": heartbeat\n\n")
                continue
            if event is None:
                break
            await response.write(event)
    except ConnectionResetError:
        pass  # the screen went away; its queue goes below
    finally:
        service.unsubscribe(queue)
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


async def _close_streams(app: web.Application) -> None:
    if (service := app[RUNTIME].lab) is not None:
        service.close_screens()


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        body = await request.json(loads=orjson.loads)
    except ValueError:
        return problem(400, "invalid", "the body is not JSON")
    if not isinstance(body, dict):
        return problem(400, "invalid", "the body is a JSON object")
    return body


async def acknowledge_tat(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    if service is None:
        return _no_service()
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    alert_id = request.match_info["id"]
    by, note = str(body.get("by") or "").strip(), str(body.get("note") or "")
    if not by:
        return problem(400, "required", "'by' names who took charge")
    if alert_id not in {a.id for a in service.engine.alerts()}:
        return problem(404, "not-found", "no open alert with this id")
    try:
        alert = service.acknowledge_tat(alert_id, by, note, request[PRINCIPAL].subject)
    except AlertError as exc:
        return problem(409, "conflict", str(exc))
    return _json(service.view.tat_json(alert))


def _staff(body: dict[str, Any], key: str) -> Staff:
    found = body.get(key)
    found = found if isinstance(found, dict) else {}
    return Staff(str(found.get("number") or "").strip(), str(found.get("name") or "").strip())


async def acknowledge_critical(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    if service is None:
        return _no_service()
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    try:
        alert = await service.acknowledge_critical(
            request.match_info["id"],
            by=_staff(body, "by"),
            clinician=_staff(body, "clinician"),
            read_back=str(body.get("read_back") or ""),
            caller=request[PRINCIPAL].subject,
        )
    except UnknownAlertError:
        return problem(404, "not-found", "no critical-value alert with this id")
    except AlertStateError as exc:
        return problem(409, "conflict", str(exc))
    except ValueError as exc:
        return problem(400, "required", str(exc))
    return _json(service.view.critical_json(alert.as_json()))


STATIC = Path(__file__).parent / "static" / "lab"
# Only the hub's own script and style may run on the screen: no inline script, no other origin.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'"
)


@cache
def _page() -> str:
    return (STATIC / "screen.html").read_text(encoding="utf-8")

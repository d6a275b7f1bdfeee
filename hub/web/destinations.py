"""The destinations in the ops API: ``GET /ops/destinations`` (each with its depth, pause state,
last delivery and last error); ``POST /ops/destinations/{name}/pause`` and ``.../resume``
(deliveries wait while it is paused, and go on in order when it is resumed)."""

from aiohttp import web

from hub.destinations.config import configured
from hub.destinations.switch import Switches
from hub.destinations.views import listing
from hub.settings import Role
from hub.web.auth import allow
from hub.web.errors import problem
from hub.web.keys import PRINCIPAL, RUNTIME


def add_routes(app: web.Application) -> None:
    app.router.add_get("/ops/destinations", destinations)
    app.router.add_post("/ops/destinations/{name}/{action:pause|resume}", switch)


@allow(Role.OPS)
async def destinations(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    switches = Switches(runtime.store.jobs)
    found = await listing(configured(), runtime.bus, runtime.store.ledger, switches)
    return web.json_response(found)


@allow(Role.OPS)
async def switch(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    name, action = request.match_info["name"], request.match_info["action"]
    if name not in {d.name for d in configured()}:
        return problem(404, "not-found", f"no destination {name!r}")
    by = request[PRINCIPAL].subject
    state = await Switches(runtime.store.jobs).turn(name, action == "pause", by)
    return web.json_response({"name": name, "paused": state.paused, "switched_by": state.by})

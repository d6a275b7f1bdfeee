"""Liveness, readiness and Prometheus metrics."""

from aiohttp import web

from hub.base.errors import JianhuError
from hub.settings import Role
from hub.web.auth import allow
from hub.web.keys import RUNTIME


async def healthz(request: web.Request) -> web.Response:
    """Alive: the event loop answers. Orchestrators restart the hub when this fails."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready: the broker and the store both answer; 503 names the one that does not."""
    runtime = request.app[RUNTIME]
    checks: dict[str, str] = {}
    for name, check in (("bus", runtime.bus.ping), ("store", runtime.store.ping)):
        try:
            await check()
            checks[name] = "ok"
        except JianhuError as exc:
            checks[name] = str(exc)
    ready = all(value == "ok" for value in checks.values())
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
    )


@allow(Role.OPS)
async def metrics(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    try:  # queue depths are sampled at scrape time; a broker hiccup must not fail the scrape
        for depth in await runtime.bus.depths():
            runtime.metrics.bus.queue_depth.labels(depth.queue).set(depth.ready)
            runtime.metrics.bus.queue_depth.labels(depth.queue + ".dead").set(depth.dead)
    except JianhuError:
        pass
    return web.Response(
        body=runtime.metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4"}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)

"""What every platform simulator shares: faults switched at run time (``POST /_faults`` with
JSON such as ``{"unavailable": 3, "latency_s": 2}``, ``GET /_faults``), injected before a
request reaches the platform's own rules. The counters run down one request at a time."""

import asyncio
from dataclasses import asdict, dataclass, fields

from aiohttp import web

from hub.base.json import Json


@dataclass
class Faults:
    latency_s: float = 0.0  # every request waits this long first
    unavailable: int = 0  # the next n requests are answered 503
    dropped: int = 0  # the next n requests lose their connection without an answer
    rejections: int = 0  # the next n uploads are refused as a business rule would

    def update(self, changes: Json) -> None:
        known = {f.name for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown fault {name!r}")
            setattr(self, name, type(getattr(self, name))(value))

    def take_rejection(self) -> bool:
        if self.rejections:
            self.rejections -= 1
            return True
        return False


FAULTS = web.AppKey("simulator_faults", Faults)


async def injected(request: web.Request) -> web.Response | None:
    """The fault's answer to this request, or None to let the platform answer."""
    faults = request.app[FAULTS]
    if faults.latency_s:
        await asyncio.sleep(faults.latency_s)
    if faults.dropped:
        faults.dropped -= 1
        if request.transport is not None:
            request.transport.abort()  # no answer at all: the client sees a reset
        return web.Response(status=500)
    if faults.unavailable:
        faults.unavailable -= 1
        return web.Response(status=503, text="Service Unavailable")
    return None


def add_fault_routes(app: web.Application, faults: Faults | None = None) -> Faults:
    app[FAULTS] = faults or Faults()
    app.router.add_get("/_faults", _get_faults)
    app.router.add_post("/_faults", _set_faults)
    return app[FAULTS]


async def _get_faults(request: web.Request) -> web.Response:
    return web.json_response(asdict(request.app[FAULTS]))


async def _set_faults(request: web.Request) -> web.Response:
    faults = request.app[FAULTS]
    try:
        faults.update(await request.json())
    except (ValueError, TypeError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(asdict(faults))

"""A strict in-memory DRG point-method platform for the contract tests and the hospital's dry
runs: the same paths, form fields, JSON-string values and ``CODE`` / ``FAILDATA`` answers as
the published platform (``drg_frontpage.md`` §3), the same refusals (not registered, a second
upload of a stay before its 冲销, a 冲销 of nothing), and faults switched at run time.

Run it for a dry run: ``python -m adapters.drg.simulator --port 8470``; change the faults with
``POST /_faults`` (JSON, e.g. ``{"unavailable": 5, "latency_s": 2}``), see them with
``GET /_faults`` and what was received with ``GET /_state``."""

import argparse
import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict

import orjson
from aiohttp import web

from adapters.drg import interfaces as names
from adapters.drg.simulator_platform import (
    HANDLERS,
    PATH_PREFIX,
    Faults,
    InterfaceHandler,
    Platform,
    RefusedError,
    StayKey,
    authenticate,
    refuse,
)
from adapters.drg.simulator_rules import Failure
from hub.base.json import Json

__all__ = ["PLATFORM", "Faults", "Platform", "StayKey", "create_app"]

PLATFORM = web.AppKey("drg_platform", Platform)


def answer(code: int, data: Json | None = None, failures: Sequence[Failure] = ()) -> web.Response:
    body: Json = {"CODE": code, "MESSAGE": "成功" if code == 200 else "校验失败"}
    if code == 200:
        body["DATA"] = data if data is not None else {"ROWS": []}
    else:
        body["FAILDATA"] = {
            "MEMO": ",".join(f.memo for f in failures),
            "MSG": "; ".join(f.msg for f in failures),
        }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def endpoint(
    interface: str, handler: InterfaceHandler
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def serve(request: web.Request) -> web.Response:
        platform = request.app[PLATFORM]
        faults = platform.faults
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
        form: Json = dict(await request.post())
        try:
            authenticate(platform, form, interface)
            if faults.rejections and interface not in names.QUERIES:
                faults.rejections -= 1
                raise refuse(faults.rejection_memo, faults.rejection_msg)
            data = handler(platform, form)
        except RefusedError as refused:
            return answer(refused.code, failures=refused.failures)
        platform.accepted[interface] += 1
        return answer(200, data)

    return serve


async def get_faults(request: web.Request) -> web.Response:
    return web.json_response(asdict(request.app[PLATFORM].faults))


async def set_faults(request: web.Request) -> web.Response:
    faults = request.app[PLATFORM].faults
    try:
        faults.update(await request.json())
    except (ValueError, TypeError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(asdict(faults))


async def get_state(request: web.Request) -> web.Response:
    platform = request.app[PLATFORM]
    return web.json_response(
        {
            "registered": platform.registered,
            "hospitals": len(platform.hospitals),
            "department_matches": len(platform.department_matches),
            "front_pages": len(platform.front_pages),
            "settlement_lists": len(platform.settlement_lists),
            "fee_details": len(platform.fee_details),
            "accepted": dict(platform.accepted),
        }
    )


def create_app(
    faults: Faults | None = None,
    app_id: str = "SIM-APP-ID",
    org_code: str = "SIM-ORG-CODE",
    path_prefix: str = PATH_PREFIX,
) -> web.Application:
    app = web.Application()
    app[PLATFORM] = Platform(app_id, org_code, faults or Faults())
    for interface, handler in HANDLERS.items():
        app.router.add_post(f"{path_prefix}/{interface}", endpoint(interface, handler))
    app.router.add_get("/_faults", get_faults)
    app.router.add_post("/_faults", set_faults)
    app.router.add_get("/_state", get_state)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="DRG point-method platform simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8470)
    parser.add_argument("--app-id", default="SIM-APP-ID")
    parser.add_argument("--org-code", default="SIM-ORG-CODE")
    options = parser.parse_args()
    app = create_app(app_id=options.app_id, org_code=options.org_code)
    web.run_app(app, host=options.host, port=options.port)


if __name__ == "__main__":
    main()

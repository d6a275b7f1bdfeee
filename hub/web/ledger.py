"""The ops API of the delivery ledger.

``GET /ops/ledger`` (filters: adapter, interface, key, status (comma-separated), since, until,
limit); ``GET /ops/ledger/{id}``; ``POST /ops/ledger/{id}/retry``;
``POST /ops/ledger/{id}/cancel``; ``POST /ops/ledger/redrive`` with ``{"adapter": "drg"}``.
"""

from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from adapters.framework.views import detail, ledger_query, summary
from hub.base.errors import StoreError
from hub.settings import Role
from hub.web.auth import allow
from hub.web.errors import problem
from hub.web.keys import RUNTIME
from store.ledger import Submission


def add_routes(app: web.Application) -> None:
    app.router.add_get("/ops/ledger", list_submissions)
    app.router.add_post("/ops/ledger/redrive", redrive)
    app.router.add_get("/ops/ledger/{id}", show_submission)
    app.router.add_post("/ops/ledger/{id}/retry", retry)
    app.router.add_post("/ops/ledger/{id}/cancel", cancel)


@allow(Role.OPS)
async def list_submissions(request: web.Request) -> web.Response:
    try:
        query = ledger_query(dict(request.query))
    except ValueError as exc:
        return problem(400, "invalid", str(exc))
    found = await request.app[RUNTIME].store.ledger.search(query)
    return web.json_response([summary(s) for s in found])


@allow(Role.OPS)
async def show_submission(request: web.Request) -> web.Response:
    try:
        found = await request.app[RUNTIME].store.ledger.get(request.match_info["id"])
    except StoreError as exc:
        return problem(404, "not-found", str(exc))
    return web.json_response(detail(found))


@allow(Role.OPS)
async def retry(request: web.Request) -> web.Response:
    return await _act(request, request.app[RUNTIME].courier.retry_now)


@allow(Role.OPS)
async def cancel(request: web.Request) -> web.Response:
    return await _act(request, request.app[RUNTIME].courier.cancel)


async def _act(
    request: web.Request, action: Callable[[str], Awaitable[Submission]]
) -> web.Response:
    try:
        done = await action(request.match_info["id"])
    except StoreError as exc:
        return problem(404, "not-found", str(exc))
    except (ValueError, KeyError) as exc:  # not in a state for it, or no such adapter here
        return problem(409, "conflict", str(exc))
    return web.json_response(summary(done))


@allow(Role.OPS)
async def redrive(request: web.Request) -> web.Response:
    try:
        body = orjson.loads(await request.read() or b"{}")
        adapter = body.get("adapter") if isinstance(body, dict) else None
        if not isinstance(adapter, str) or not adapter:
            raise ValueError('give {"adapter": "<name>"}')
    except (ValueError, orjson.JSONDecodeError) as exc:
        return problem(400, "invalid", str(exc))
    return web.json_response({"redriven": await request.app[RUNTIME].courier.redrive(adapter)})

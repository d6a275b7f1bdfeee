"""The ops API: queue depths and dead letters, with redrive.

``GET /ops/queues``; ``GET /ops/dlq/{queue}``; ``GET /ops/dlq/{queue}/{message_id}``;
``POST /ops/dlq/{queue}/redrive`` with ``{"ids": [...]}`` (omit for every dead letter).
"""

from typing import Any

import orjson
from aiohttp import web

from hub.base.errors import DeadLetterNotFoundError, TopologyError
from hub.base.hospital_time import shown
from hub.bus.base import DeadLetter
from hub.settings import Role
from hub.web.auth import allow
from hub.web.errors import problem
from hub.web.keys import RUNTIME


def dead_letter_summary(dead: DeadLetter) -> dict[str, Any]:
    envelope = dead.envelope
    return {
        "id": envelope.id,
        "type": envelope.type,
        "source": envelope.source,
        "queue": dead.queue,
        "routing_key": dead.routing_key,
        "attempts": dead.attempts,
        "error_class": dead.error_class,
        "error": dead.error,
        "dead_at": shown(dead.dead_at) if dead.dead_at else None,
        "received_at": shown(envelope.received_at),
    }


def dead_letter_detail(dead: DeadLetter) -> dict[str, Any]:
    return dead_letter_summary(dead) | {"envelope": orjson.loads(dead.envelope.to_json())}


@allow(Role.OPS)
async def queues(request: web.Request) -> web.Response:
    depths = await request.app[RUNTIME].bus.depths()
    return web.json_response([{"queue": d.queue, "ready": d.ready, "dead": d.dead} for d in depths])


@allow(Role.OPS)
async def list_dead(request: web.Request) -> web.Response:
    limit = _limit(request)
    try:
        found = await request.app[RUNTIME].bus.dead_letters(request.match_info["queue"], limit)
    except TopologyError as exc:
        return problem(404, "not-found", str(exc))
    return web.json_response([dead_letter_summary(dead) for dead in found])


@allow(Role.OPS)
async def show_dead(request: web.Request) -> web.Response:
    queue, message_id = request.match_info["queue"], request.match_info["message_id"]
    try:
        dead = await request.app[RUNTIME].bus.dead_letter(queue, message_id)
    except (TopologyError, DeadLetterNotFoundError) as exc:
        return problem(404, "not-found", str(exc))
    return web.json_response(dead_letter_detail(dead))


@allow(Role.OPS)
async def redrive(request: web.Request) -> web.Response:
    ids = None
    if request.can_read_body:
        try:
            body = orjson.loads(await request.read())
            ids = body.get("ids") if isinstance(body, dict) else None
        except orjson.JSONDecodeError:
            return problem(400, "invalid", 'the body must be JSON: {"ids": [...]}')
        if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
            return problem(400, "invalid", "ids must be a list of message ids")
    try:
        moved = await request.app[RUNTIME].bus.redrive(request.match_info["queue"], ids)
    except TopologyError as exc:
        return problem(404, "not-found", str(exc))
    return web.json_response({"redriven": moved})


def _limit(request: web.Request) -> int:
    try:
        return max(1, min(int(request.query.get("limit", "100")), 10_000))
    except ValueError:
        return 100


def add_routes(app: web.Application) -> None:
    app.router.add_get("/ops/queues", queues)
    app.router.add_get("/ops/dlq/{queue}", list_dead)
    app.router.add_get("/ops/dlq/{queue}/{message_id}", show_dead)
    app.router.add_post("/ops/dlq/{queue}/redrive", redrive)

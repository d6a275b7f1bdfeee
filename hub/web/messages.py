"""The ops API of the HL7 v2 archive.

``GET /ops/messages`` (filters: sender, type, status, control_id, patient_id, since, until,
limit); ``GET /ops/messages/{id}``; ``POST /ops/messages/replay`` with ``{"ids": [...]}`` or the
same filters as the list (``{"type": "ORU^R01", "status": "failed", "since": ...}``).
"""

from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from hub.base.errors import PublishError, StoreError
from hub.base.hospital_time import parse_given
from hub.hl7v2.replay import archive_query, detail, replay, summary
from hub.settings import Role
from hub.web.auth import allow
from hub.web.errors import problem
from hub.web.keys import RUNTIME
from store.archive import (
    FAILED,
    PUBLISHED,
    RECEIVED,
    REJECTED,
    STORED,
    STRANDED,
    UNMAPPED,
)
from store.listing import MAX_LISTED, listing_limit

FILTERS = ("sender", "type", "status", "control_id", "patient_id", "since", "until", "limit")
STATUSES = (RECEIVED, PUBLISHED, STORED, UNMAPPED, FAILED, REJECTED, STRANDED)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/ops/messages", list_messages)
    app.router.add_get("/ops/messages/{id}", show_message)
    app.router.add_post("/ops/messages/replay", replay_messages)


def _query(values: dict[str, Any]) -> Any:
    """The archive query of a list or replay, every value checked: ValueError says which."""
    unknown = set(values) - set(FILTERS) - {"ids"}
    if unknown:
        raise ValueError(f"unknown filter(s): {', '.join(sorted(unknown))}")
    texts = {k: v for k, v in values.items() if k in FILTERS and k != "limit"}
    if any(not isinstance(v, str) for v in texts.values()):
        raise ValueError("filters are text: " + ", ".join(sorted(texts)))
    if values.get("status") not in (None, *STATUSES):
        raise ValueError(f"status is one of {', '.join(STATUSES)}")
    moments = {k: _moment(k, values[k]) for k in ("since", "until") if values.get(k)}
    return archive_query(
        sender=values.get("sender"),
        message_type=values.get("type"),
        status=values.get("status"),
        control_id=values.get("control_id"),
        patient_id=values.get("patient_id"),
        since=moments.get("since"),
        until=moments.get("until"),
        limit=listing_limit(values.get("limit")),
    )


def _moment(name: str, text: str) -> datetime:
    return parse_given(name, text)


def _ids(raw: object) -> list[str]:
    if not isinstance(raw, list) or not raw or len(raw) > MAX_LISTED:
        raise ValueError(f"ids is a list of 1 to {MAX_LISTED} archive ids")
    if not all(isinstance(item, str) and item for item in raw):
        raise ValueError("each of ids is an archive id (text)")
    return raw


@allow(Role.OPS)
async def list_messages(request: web.Request) -> web.Response:
    try:
        query = _query(dict(request.query))
    except ValueError as exc:
        return problem(400, "invalid", str(exc))
    found = await request.app[RUNTIME].archive.search(query)
    return web.json_response([summary(m) for m in found])


@allow(Role.OPS)
async def show_message(request: web.Request) -> web.Response:
    try:
        message = await request.app[RUNTIME].archive.get(request.match_info["id"])
    except StoreError as exc:
        return problem(404, "not-found", str(exc))
    return web.json_response(detail(message))


@allow(Role.OPS)
async def replay_messages(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    try:
        body = orjson.loads(await request.read() or b"{}")
        if not isinstance(body, dict) or not body:
            raise ValueError("give ids or at least one filter (replaying everything is a mistake)")
        if "ids" in body:
            if set(body) != {"ids"}:
                raise ValueError("give ids or filters, not both")
            messages = [await runtime.archive.get(i) for i in _ids(body["ids"])]
        else:
            messages = list(await runtime.archive.search(_query(body)))
    except (ValueError, orjson.JSONDecodeError) as exc:
        return problem(400, "invalid", str(exc))
    except StoreError as exc:
        return problem(404, "not-found", str(exc))
    try:
        replayed = await replay(runtime.publisher, messages)
    except PublishError as exc:
        return problem(503, "transient", str(exc))
    return web.json_response({"replayed": replayed})

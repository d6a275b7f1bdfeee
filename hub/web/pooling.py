"""The pooled-testing (混检) API: the collection desk opens a tube, scans people into it,
closes it and prints its label; the LIS receives, registers and results it.

``POST /lab/pools`` ``{"collection_point": "..."}`` (optionally ``"barcode"``);
``GET /lab/pools/{barcode}``; ``POST /lab/pools/{barcode}/people`` ``{"id_card", "name",
"phone", "address"}``; ``POST /lab/pools/{barcode}/close``; ``GET /lab/pools/{barcode}/label``
(PDF); LIS: ``POST /lab/pools/{barcode}/receive``, ``.../register`` ``{"accession"}``,
``.../result`` ``{"positive": true}`` (the answer lists the recall Tasks)."""

from typing import Any

import orjson
from aiohttp import web

from hub.base.errors import RetryableError
from hub.lab.labels import LabelUnavailableError, label_for, render_label
from hub.lab.pool_tube import (
    IdCardError,
    Person,
    PoolingError,
    Tube,
    TubeNotFoundError,
    shanghai_now,
)
from hub.lab.pooling import PoolingService
from hub.settings import Role
from hub.web.auth import allow
from hub.web.errors import problem
from hub.web.keys import RUNTIME

DESK = (Role.CLINICIAN, Role.SYSTEM)  # the collection desk's app, or the HIS on its behalf
LIS = (Role.SYSTEM,)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/lab/pools", open_tube)
    app.router.add_get("/lab/pools/{barcode}", show_tube)
    app.router.add_post("/lab/pools/{barcode}/people", add_person)
    app.router.add_post("/lab/pools/{barcode}/close", close_tube)
    app.router.add_get("/lab/pools/{barcode}/label", tube_label)
    app.router.add_post("/lab/pools/{barcode}/receive", receive_tube)
    app.router.add_post("/lab/pools/{barcode}/register", register_tube)
    app.router.add_post("/lab/pools/{barcode}/result", tube_result)


def _service(request: web.Request) -> PoolingService:
    return PoolingService(request.app[RUNTIME].store.resources)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read() or b"{}")
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def view(tube: Tube) -> dict[str, Any]:
    """The tube for the desk and the LIS: who is in it by reference, not by name."""
    return {
        "barcode": tube.barcode,
        "collection_point": tube.collection_point,
        "people": len(tube.members),
        "patients": tube.patients(),
        "states": [member.state.value for member in tube.members],
        "closed_at": tube.closed_at,
        "received_at": tube.received_at,
        "accession": tube.accession,
        "result": tube.outcome.value if tube.outcome else None,
    }


async def _run(request: web.Request, work: Any) -> web.Response:
    """Run one operation; the domain's refusals become clear 4xx answers."""
    try:
        return await work()  # type: ignore[no-any-return]
    except (ValueError, IdCardError) as exc:
        return problem(422, "invalid", str(exc))
    except TubeNotFoundError as exc:
        return problem(404, "not-found", str(exc))
    except PoolingError as exc:  # full, closed, already in it, a conflicting result
        return problem(409, "conflict", str(exc))
    except RetryableError as exc:  # scanners racing on one tube past the retries
        return problem(503, "transient", str(exc))


@allow(*DESK)
async def open_tube(request: web.Request) -> web.Response:
    async def work() -> web.Response:
        body = await _body(request)
        point = body.get("collection_point")
        if not isinstance(point, str) or not point:
            raise ValueError("collection_point is required")
        tube = await _service(request).open_tube(point, body.get("barcode"))
        return web.json_response(view(tube), status=201)

    return await _run(request, work)


@allow(*DESK, Role.OPS)
async def show_tube(request: web.Request) -> web.Response:
    async def work() -> web.Response:
        return web.json_response(view(await _service(request).tube(_barcode(request))))

    return await _run(request, work)


@allow(*DESK)
async def add_person(request: web.Request) -> web.Response:
    async def work() -> web.Response:
        body = await _body(request)
        if not body.get("id_card") or not body.get("name"):
            raise ValueError("id_card and name are required")
        person = Person(
            str(body["id_card"]),
            str(body["name"]),
            body.get("phone"),
            body.get("address"),
        )
        tube = await _service(request).add_person(_barcode(request), person)
        return web.json_response(view(tube))

    return await _run(request, work)


@allow(*DESK)
async def close_tube(request: web.Request) -> web.Response:
    async def work() -> web.Response:
        return web.json_response(view(await _service(request).close_tube(_barcode(request))))

    return await _run(request, work)


@allow(*DESK)
async def tube_label(request: web.Request) -> web.Response:
    async def work() -> web.Response:
        tube = await _service(request).tube(_barcode(request))
        try:
            pdf = render_label(label_for(tube, shanghai_now()))
        except LabelUnavailableError as exc:
            return problem(501, "not-supported", str(exc))
        return web.Response(body=pdf, content_type="application/pdf")

    return await _run(request, work)


@allow(*LIS)
async def receive_tube(request: web.Request) -> web.Response:
    async def work() -> web.Response:
        return web.json_response(view(await _service(request).receive(_barcode(request))))

    return await _run(request, work)


@allow(*LIS)
async def register_tube(request: web.Request) -> web.Response:
    async def work() -> web.Response:
        accession = (await _body(request)).get("accession")
        if not isinstance(accession, str) or not accession:
            raise ValueError("accession is required")
        tube = await _service(request).register(_barcode(request), accession)
        return web.json_response(view(tube))

    return await _run(request, work)


@allow(*LIS)
async def tube_result(request: web.Request) -> web.Response:
    async def work() -> web.Response:
        positive = (await _body(request)).get("positive")
        if not isinstance(positive, bool):
            raise ValueError('give {"positive": true} or {"positive": false}')
        recall = await _service(request).record_result(_barcode(request), positive)
        tasks = [f"Task/{task['id']}" for task in recall.tasks]
        return web.json_response({**view(recall.tube), "recall": tasks})

    return await _run(request, work)


def _barcode(request: web.Request) -> str:
    return request.match_info["barcode"]

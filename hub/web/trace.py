"""The ops API of ``jianhu trace``: ``GET /ops/trace/{id}`` with a correlation id, an archive id
or an MSH-10 control id; the whole path of that message or request as JSON. Looking at a
trace is an access to patient data (it names the patient's resources) and is audited."""

from datetime import UTC, datetime

import orjson
from aiohttp import web

from adapters.framework.views import submission_tracer
from hub.base.correlation import MAX_TRACED_CHARS, traceable
from hub.registry import FEATURES
from hub.settings import Role
from hub.trace import Trace, Tracer, access_event, trace
from hub.web.auth import allow
from hub.web.errors import problem
from hub.web.keys import PRINCIPAL, RUNTIME
from store.base import Store
from store.index import instant


def add_routes(app: web.Application) -> None:
    app.router.add_get("/ops/trace/{id:.+}", show_trace)  # a control id may hold a slash


def tracers(store: Store) -> list[Tracer]:
    """What the registered features and the adapters' ledger add to a trace."""
    found = [feature.tracer(store) for feature in FEATURES if feature.tracer is not None]
    return [*found, ("submissions", submission_tracer(store.ledger))]


async def trace_of(store: Store, id: str) -> Trace:
    return await trace(id, store.archive, store.resources, tracers(store))


def access(caller: str, role: str, found: Trace) -> dict[str, object]:
    return access_event(caller, role, found, instant(datetime.now(UTC)))


@allow(Role.OPS)
async def show_trace(request: web.Request) -> web.Response:
    id_ = traceable(request.match_info["id"])
    if id_ is None:
        return problem(400, "invalid", f"not an id: 1 to {MAX_TRACED_CHARS} printable characters")
    runtime = request.app[RUNTIME]
    if runtime.audit is not None:
        await runtime.audit.flush()  # the alert steps of the last quarter second too
    found = await trace_of(runtime.store, id_)
    principal = request[PRINCIPAL]
    if runtime.audit is not None:
        runtime.audit.record(access(principal.subject, principal.role, found))
    if not found.found:
        return problem(404, "not-found", f"nothing has the id {id_}")
    return web.Response(body=orjson.dumps(found.as_json()), content_type="application/json")

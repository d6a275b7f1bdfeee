"""The aiohttp application: the runtime starts and stops with it, in the same event loop."""

from collections.abc import AsyncIterator

from aiohttp import web

from hub.registry import ADAPTERS, FEATURES
from hub.runtime import Runtime
from hub.web import fhir, health, hl7, ledger, messages, ops, progress, trace
from hub.web.auth import auth_middleware
from hub.web.correlation import correlation_middleware
from hub.web.errors import answer_unreadable_requests_in_json, error_middleware
from hub.web.keys import RUNTIME


def make_app(runtime: Runtime, consume: bool = True) -> web.Application:
    answer_unreadable_requests_in_json()
    app = web.Application(
        middlewares=[correlation_middleware, error_middleware, auth_middleware],
        client_max_size=32 * 1024 * 1024,
        # a long search URL reaches the FHIR layer, which answers 414 with an OperationOutcome
        # past JIANHU_FHIR__MAX_QUERY_BYTES, instead of the HTTP parser's plain-text 400
        handler_args={"max_line_size": 256 * 1024},
    )
    app[RUNTIME] = runtime

    async def runtime_ctx(app: web.Application) -> AsyncIterator[None]:
        await runtime.start(consume=consume)
        yield
        await runtime.stop()

    app.cleanup_ctx.append(runtime_ctx)
    health.add_routes(app)
    ops.add_routes(app)
    fhir.add_routes(app)
    hl7.add_routes(app)
    messages.add_routes(app)
    ledger.add_routes(app)
    progress.add_routes(app)
    for feature in FEATURES:
        for add in feature.http_routes:
            add(app)
    for adapter in ADAPTERS:
        for add in adapter.http_routes:
            add(app)
    trace.add_routes(app)
    return app

"""The outbound destinations (S15) as the hub sees them: a router queue that takes every
message once it is in the store, a queue of its own per configured destination
(``destinations.json``; single active consumer, so one process delivers each, in order), their
handlers, and the ops API's routes."""

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from hub.bus.base import Handler
from hub.bus.routing import Route
from hub.bus.topology import INBOUND
from hub.destinations.config import FILE, configured, parse
from hub.destinations.router import QUEUE, Router, delivery_key
from hub.destinations.sender import DestinationSender
from hub.destinations.switch import Switches
from hub.destinations.transports import Transports
from hub.hl7v2.processed import PROCESSED_KEY
from hub.plugin import FeaturePlugin
from hub.web import destinations as destinations_web

NAME = "destinations"


class DestinationsSettings(BaseModel):
    """Destinations are a site table (``destinations.json``), not environment settings."""


def _routes() -> Sequence[Route]:
    destinations = configured()
    if not destinations:
        return ()  # nothing routed: the normalizer publishes no notice either
    router = Route(
        QUEUE,
        INBOUND,
        (PROCESSED_KEY,),
        "destination-router",
        "choose the destinations of each message taken into the store",
    )
    return (
        router,
        *(
            Route(
                d.queue,
                INBOUND,
                (delivery_key(d.name),),
                "destination-sender",
                f"deliver to {d.name}: {d.description}"[:100],
                single_active_consumer=True,
            )
            for d in destinations
        ),
    )


def _router(runtime: Any) -> Handler:
    store = runtime.store
    return Router(configured(), store.archive, store.resources, store.ledger, runtime.bus)


def _sender(runtime: Any) -> Handler:
    by_queue = {d.queue: d for d in configured()}
    switches = Switches(runtime.store.jobs)
    # a delivery must end (recorded, retried) before the bus gives up on its handler
    budget = max(1.0, runtime.settings.bus.handler_timeout_s * 0.8)
    ledger = runtime.store.ledger
    return DestinationSender(by_queue, ledger, Transports(runtime), switches, budget)


PLUGIN = FeaturePlugin(
    name=NAME,
    settings=DestinationsSettings,
    configured_routes=_routes,
    handlers={"destination-router": _router, "destination-sender": _sender},
    http_routes=(destinations_web.add_routes,),
    site_files={FILE: parse},
)

"""The routing table of the hub.

Each ``Route`` names a work queue, the exchange and routing-key patterns it takes, and the
handler that processes it, by a name resolved in ``HANDLERS``. Routing keys:
- ``jianhu.inbound``: the hub's archived HL7 v2 as ``hl7v2.<TYPE>.<EVENT>`` (``hl7v2.ORU.R01``),
  systems' plain messages as ``hl7v2`` and ``fhir.<ResourceType>`` (docs/amqp.md), and the
  hub's own jobs as ``hub.<what>`` (``hub.subscription.deliver``);
- ``jianhu.events``: ``fhir.<ResourceType>.<created|updated|deleted>``.
Operations read this file (or ``jianhu routes``) to know where a message goes.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from hub import subscriptions
from hub.bus.routing import HandlerFactory, Route
from hub.bus.topology import EVENTS, INBOUND, QueueSpec
from hub.hl7v2 import application_ack
from hub.hl7v2.application_ack import APPLICATION_ACK_KEY
from hub.hl7v2.normalizer import normalizer
from hub.plugin import FeaturePlugin
from hub.registry import ADAPTERS, FEATURES


@dataclass(frozen=True)
class RoutingTable:
    routes: tuple[Route, ...]
    handlers: Mapping[str, HandlerFactory]

    def __post_init__(self) -> None:
        unknown = sorted({r.handler for r in self.routes} - set(self.handlers))
        if unknown:
            raise ValueError(f"routes name handlers that are not registered: {unknown}")
        queues = [r.queue for r in self.routes]
        if len(queues) != len(set(queues)):
            raise ValueError("two routes share one queue")

    def specs(self) -> list[QueueSpec]:
        return [route.spec for route in self.routes]


# The core's routes; each feature declares its own in its plugin (``hub/registry.py``).
ROUTES: tuple[Route, ...] = (
    Route(
        "hl7v2.normalizer",
        INBOUND,
        ("hl7v2.*.*",),  # hl7v2.ORU.R01; "hl7v2" alone is the key systems publish with
        "hl7v2-normalizer",
        "map HL7 v2 messages to FHIR into the clinical store",
        retired_bindings=("hl7v2.#",),
    ),
    Route(
        "hl7v2.application-ack",
        INBOUND,
        (APPLICATION_ACK_KEY,),
        "hl7v2-application-ack",
        "send application ACKs (enhanced mode) to the senders that ask for them",
    ),
    Route(
        "fhir.subscriptions",
        EVENTS,
        ("fhir.#",),
        "subscription-matcher",
        "match every FHIR write against the active Subscriptions",
    ),
    Route(
        "fhir.subscription-delivery",
        INBOUND,
        (subscriptions.DELIVER_KEY,),
        "subscription-sender",
        "send rest-hook notifications, with retries and dead letters",
    ),
)
HANDLERS: Mapping[str, HandlerFactory] = {
    "hl7v2-normalizer": normalizer,
    "hl7v2-application-ack": application_ack.sender,
    "subscription-matcher": subscriptions.matcher,
    "subscription-sender": subscriptions.sender,
}


def default_table() -> RoutingTable:
    """The core's routes and those every registered feature and adapter declares."""
    declared = [(_routes_of(f), f.handlers) for f in FEATURES] + [
        (a.routes, a.handlers) for a in ADAPTERS
    ]
    routes = ROUTES + tuple(route for theirs, _ in declared for route in theirs)
    handlers = dict(HANDLERS)
    for _, theirs in declared:
        taken = sorted(set(handlers) & set(theirs))
        if taken:  # a plugin must not replace the core's handler or another plugin's
            raise ValueError(f"handler names registered twice: {taken}")
        handlers |= theirs
    return RoutingTable(routes, handlers)


def _routes_of(feature: FeaturePlugin) -> tuple[Route, ...]:
    configured = feature.configured_routes() if feature.configured_routes is not None else ()
    return (*feature.routes, *configured)


def render(table: RoutingTable) -> str:
    """The table as operations read it: one line per route."""
    if not table.routes:
        return "no routes are configured"
    rows = [("QUEUE", "EXCHANGE", "ROUTING KEYS", "HANDLER", "WHAT")]
    rows += [
        (r.queue, r.exchange, " ".join(r.bindings), r.handler, r.description) for r in table.routes
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4]
        for row in rows
    )

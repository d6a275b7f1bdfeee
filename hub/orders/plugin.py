"""Orders out (S15) as the hub sees it: its settings (``JIANHU_ORDERS__*``, who performs what),
and a queue on the FHIR events of ServiceRequests, present when a destination takes order
messages (ORM, OML, OMI): without one, nothing would carry them."""

from collections.abc import Sequence
from typing import Any

from hub.bus.base import Handler
from hub.bus.routing import Route
from hub.bus.topology import EVENTS
from hub.destinations.config import configured
from hub.orders.outbound import BINDINGS, QUEUE, OrdersOut
from hub.orders.settings import OrdersSettings
from hub.plugin import FeaturePlugin

NAME = "orders"
ORDER_MESSAGES = frozenset({"ORM", "OML", "OMI", "ORM^O01", "OML^O21", "OMI^O23"})


def _routes() -> Sequence[Route]:
    carried = any(ORDER_MESSAGES & set(d.filter.message_types) for d in configured())
    if not carried:
        return ()
    description = "turn ServiceRequests written through the FHIR API into orders for performers"
    return (Route(QUEUE, EVENTS, BINDINGS, "orders-out", description),)


def _handler(runtime: Any) -> Handler:
    store = runtime.store
    settings = runtime.settings.section(NAME)
    return OrdersOut(settings, store.resources, store.archive, runtime.bus)


PLUGIN = FeaturePlugin(
    name=NAME,
    settings=OrdersSettings,
    configured_routes=_routes,
    handlers={"orders-out": _handler},
)

"""One route of the routing table: a work queue, what it takes and the handler that processes
it, by name. Declared by the hub's core (``routes/table.py``) and by each feature's plugin."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hub.bus.base import Handler
from hub.bus.topology import QueueSpec


@dataclass(frozen=True)
class Route:
    queue: str
    exchange: str
    bindings: tuple[str, ...]
    handler: str  # a key of the handler registry
    description: str
    single_active_consumer: bool = False
    retired_bindings: tuple[str, ...] = ()  # see ``QueueSpec``
    plain_messages: bool = False  # see ``QueueSpec``

    @property
    def spec(self) -> QueueSpec:
        return QueueSpec(
            self.queue,
            self.exchange,
            self.bindings,
            self.single_active_consumer,
            self.retired_bindings,
            self.plain_messages,
        )


# A handler factory gets the running hub's services and returns the handler for one queue.
HandlerFactory = Callable[[Any], Handler]

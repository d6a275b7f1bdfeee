"""The one error tree of the hub.

Handlers and adapters raise these; the bus and the adapters' ledger decide what to do by class:
a ``RetryableError`` is tried again later, a ``PermanentError`` goes to a person (dead letter or a
rejected ledger row). Vendor exceptions are translated at the boundary with ``raise ... from``.
"""


class JianhuError(Exception):
    """Root of every error the hub raises on purpose."""


class ConfigurationError(JianhuError):
    """The settings cannot start the hub; the message lists every problem at once."""


class RetryableError(JianhuError):
    """A transient failure (network, broker, a busy receiver): the same work may succeed later."""


class KeepRetryingError(RetryableError):
    """A failure that outlasts any retry budget without being the message's fault (a receiver
    down for hours): retried at the bus's longest delay once its delays run out (or the longest
    not over ``longest_s``, for work that must go on soon after its cause clears), never
    dead-lettered for the number of attempts. The raiser decides when to give up."""

    def __init__(self, message: str, longest_s: float | None = None) -> None:
        super().__init__(message)
        self.longest_s = longest_s


class PermanentError(JianhuError):
    """The work can never succeed as it is (bad input, a business rule): retrying is useless."""


class MappingError(PermanentError, ValueError):
    """A message cannot be mapped as it is (a required segment or field missing, a value that
    is not what its type says): the sender must correct it. A ``ValueError`` too, so code that
    validates values keeps catching it; the normalizer treats only this class as the message's
    fault, and any other exception as a failure of the hub's (retried, traceback logged)."""


class BusError(JianhuError):
    """The message bus could not do what was asked."""


class PublishError(BusError, RetryableError):
    """A publish was not confirmed: nacked, returned as unroutable, or the link broke."""


class UnroutableError(PublishError):
    """The broker accepted the publish but no queue was bound for its routing key."""


class TopologyError(BusError):
    """An exchange or queue the hub relies on is missing or declared differently."""


class DeadLetterNotFoundError(BusError):
    """No dead-lettered message with that id is in that queue."""


class StoreError(JianhuError):
    """The clinical store could not do what was asked."""


class ResourceNotFoundError(StoreError):
    """No resource (or no such version) with that type and id: HTTP 404."""


class ResourceGoneError(StoreError):
    """The resource existed and was deleted: HTTP 410."""


class VersionConflictError(StoreError):
    """The caller's expected version is not the current one (If-Match): HTTP 412 or 409."""

    def __init__(self, message: str, key: str = "") -> None:
        super().__init__(message)
        self.key = key  # "Type/id" of the write whose condition failed


class SearchError(JianhuError):
    """A search request that cannot be run as asked: HTTP 400 with the parameter named."""

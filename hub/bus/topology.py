"""Every exchange, queue and argument the hub declares, in one place.

Both buses follow the same shape:
- topic exchanges ``jianhu.inbound`` (raw messages from systems) and ``jianhu.events``
  (canonical FHIR events); work queues bind to them with routing-key patterns;
- each work queue ``Q`` dead-letters to exchange ``jianhu.dead`` with key ``Q``, into ``Q.dead``;
- a retryable failure is republished to the topic exchange ``jianhu.retry`` with key
  ``<tier>.Q`` (tier such as ``5000ms``) into the delay queue ``jianhu.retry.<tier>`` (bound
  ``<tier>.#``, message TTL = the delay); when the TTL expires the broker dead-letters it, with the
  same key, to the topic exchange ``jianhu.requeue``, where ``Q`` alone is bound as ``*.Q``.
  A redrive publishes there as ``redrive.Q``. So a retry or a redrive goes back to the one queue
  that failed, not to every queue bound to the original key.
"""

from dataclasses import dataclass
from functools import lru_cache

from pamqp.common import FieldTable

INBOUND = "jianhu.inbound"
EVENTS = "jianhu.events"
DEAD = "jianhu.dead"
RETRY = "jianhu.retry"
REQUEUE = "jianhu.requeue"
TOPIC_EXCHANGES = (INBOUND, EVENTS, RETRY, REQUEUE)
DIRECT_EXCHANGES = (DEAD,)
REDRIVE_TIER = "redrive"

# Headers the hub adds to a message as it moves through retries and dead letters.
H_ATTEMPT = "x-jianhu-attempt"  # 1 on first delivery, +1 per delayed retry
H_ROUTING_KEY = "x-jianhu-routing-key"  # the key it was first published with
H_ERROR_CLASS = "x-jianhu-error-class"
H_ERROR = "x-jianhu-error"
H_DEAD_AT = "x-jianhu-dead-at"


@dataclass(frozen=True)
class QueueSpec:
    """A work queue: which exchange it listens on and which routing-key patterns it takes."""

    name: str
    exchange: str
    bindings: tuple[str, ...]
    # one consumer at a time across every process: a feature that keeps its state in memory
    # (the lab screens) must see every message in one process, with the others as standbys
    # (not in order: a process still runs several handlers at once, and retries come late)
    single_active_consumer: bool = False
    # bindings an earlier release made: unbound at each declare, so a queue already on a broker
    # stops taking what it no longer should (RabbitMQ keeps every binding ever made)
    retired_bindings: tuple[str, ...] = ()
    # takes systems' plain messages (``hub.bus.outside``); any other queue takes only the hub's
    # own envelopes, and sets a plain message aside in its dead queue, unread
    plain_messages: bool = False

    @property
    def dead_queue(self) -> str:
        return dead_queue_name(self.name)


def dead_queue_name(queue: str) -> str:
    return f"{queue}.dead"


def retry_tier(delay_s: float) -> str:
    return f"{round(delay_s * 1000)}ms"


def retry_queue_name(delay_s: float) -> str:
    return f"{RETRY}.{retry_tier(delay_s)}"


def requeue_key(tier: str, queue: str) -> str:
    """Key on jianhu.retry / jianhu.requeue that brings a message back to ``queue`` only."""
    return f"{tier}.{queue}"


def requeue_binding(queue: str) -> str:
    return f"*.{queue}"


def _quorum_dead_lettering(exchange: str) -> FieldTable:
    """Every queue of the hub: quorum, with at-least-once dead-lettering to ``exchange``.

    At-least-once dead-lettering needs ``reject-publish`` overflow: a full queue refuses new
    publishes (the publisher sees it) instead of dropping its oldest message.
    """
    return {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": exchange,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def work_queue_arguments(
    queue: str, delivery_limit: int, single_active_consumer: bool = False
) -> FieldTable:
    arguments = _quorum_dead_lettering(DEAD) | {
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-routing-key": queue,
    }
    if single_active_consumer:
        arguments["x-single-active-consumer"] = True
    return arguments


def dead_queue_arguments(queue: str) -> FieldTable:
    # A dead queue is terminal: no delivery limit, so listing it (get, then return) is harmless.
    # Its own dead-letter target is itself, so a mistaken reject puts the message back, not away.
    return _quorum_dead_lettering(DEAD) | {"x-dead-letter-routing-key": queue}


def retry_queue_arguments(delay_s: float) -> FieldTable:
    # No dead-letter routing key: the message keeps its key "<tier>.Q" on its way to jianhu.requeue.
    return _quorum_dead_lettering(REQUEUE) | {"x-message-ttl": round(delay_s * 1000)}


@lru_cache(maxsize=4096)
def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: ``*`` is exactly one word, ``#`` is zero or more words."""
    return _match(tuple(pattern.split(".")), tuple(routing_key.split(".")))


def _match(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return (head == "*" or head == words[0]) and _match(rest, words[1:])

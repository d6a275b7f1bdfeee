"""What happens to a delivery after its handler ran: the one place that decides ack, retry or
dead letter, shared by both buses so they cannot drift apart."""

from dataclasses import dataclass
from enum import StrEnum

from hub.base.errors import KeepRetryingError, PermanentError
from hub.base.masking import mask_text

MAX_ERROR_CHARS = 500


class Verdict(StrEnum):
    ACK = "ack"
    RETRY = "retry"
    DEAD = "dead"


@dataclass(frozen=True)
class Disposition:
    verdict: Verdict
    delay_s: float = 0.0
    error_class: str = ""
    error: str = ""


ACKED = Disposition(Verdict.ACK)


def describe(exc: BaseException) -> tuple[str, str]:
    """Class path and a masked, bounded message: dead letters are read by people."""
    cls = type(exc)
    message = mask_text(str(exc))[:MAX_ERROR_CHARS]
    return f"{cls.__module__}.{cls.__qualname__}", message


def decide(exc: BaseException, attempt: int, retry_delays_s: tuple[float, ...]) -> Disposition:
    """Permanent errors die at once; anything else is retried after the next delay, then dies.

    Unknown exceptions count as retryable: a bug fixed and redeployed lets the retry succeed,
    and the retry budget still ends in a dead letter a person can redrive.
    """
    error_class, error = describe(exc)
    if isinstance(exc, KeepRetryingError) and retry_delays_s:
        delays = retry_delays_s
        if exc.longest_s is not None:  # only the bus's tiers exist: the longest within it
            delays = tuple(d for d in delays if d <= exc.longest_s) or delays[:1]
        delay = delays[min(attempt, len(delays)) - 1]
        return Disposition(Verdict.RETRY, delay, error_class, error)
    if isinstance(exc, PermanentError) or attempt > len(retry_delays_s):
        return Disposition(Verdict.DEAD, error_class=error_class, error=error)
    return Disposition(Verdict.RETRY, retry_delays_s[attempt - 1], error_class, error)

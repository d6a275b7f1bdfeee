"""Delivering a destination's queue: each delivery names its ledger submission; it is sent when
no earlier message of the same patient is still on its way to that destination (earlier by the
archive's receipt order), one at a time per patient in a process (the destination's queue has
one active consumer, and MLLP one message in flight per connection). The answer is recorded in
the ledger as an attempt: accepted (AA/CA), rejected (AE/AR: dead-lettered for a person, later
messages go on), failed (retried with the bus's backoff, without a budget unless the destination
sets ``max_attempts``, so a receiver down for hours loses nothing).

A paused destination keeps its deliveries waiting the same way. A delivery found done (a
redelivery after a crash) is not sent again; one dead or rejected that comes back on its queue
as a first attempt was redriven by a person, and is sent again."""

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hub.base.errors import JianhuError, KeepRetryingError, PermanentError, StoreError
from hub.base.logs import log_event
from hub.base.masking import mask_text
from hub.base.tasks import KeyedLocks
from hub.bus.base import Delivery
from hub.destinations.config import Destination
from hub.destinations.router import ADAPTER
from hub.destinations.switch import Switches
from hub.destinations.transports import Sent, Transports
from hub.hl7v2.client import ACCEPTED, REJECTED
from store.ledger import (
    DEAD,
    FAILED,
    OPEN,
    PENDING,
    SENDING,
    Attempt,
    Ledger,
    LedgerQuery,
    Submission,
)
from store.ledger import (
    REJECTED as LEDGER_REJECTED,
)

log = logging.getLogger(__name__)
REDRIVEN = (LEDGER_REJECTED, DEAD)  # back on the queue as a first attempt: a person's redrive


@dataclass
class DestinationSender:
    destinations: Mapping[str, Destination]  # by queue name
    ledger: Ledger
    transports: Transports
    switches: Switches
    # what one delivery may take, below the bus's handler timeout: past it the attempt failed
    send_timeout_s: float = 240.0
    _one_at_a_time: KeyedLocks = field(default_factory=KeyedLocks)

    async def __call__(self, delivery: Delivery) -> None:
        destination = self.destinations.get(delivery.queue)
        if destination is None:
            raise PermanentError(f"{delivery.queue} is no configured destination")
        submission_id = delivery.envelope.headers.get("submission", "")
        try:
            submission = await self.ledger.get(submission_id)
        except StoreError as exc:
            raise PermanentError(f"no delivery {submission_id} in the ledger") from exc
        # one patient's deliveries one after another, in arrival order (the lock is fair);
        # other patients' meanwhile, their ledger writes committed together
        async with self._one_at_a_time(submission.business_key):
            # read again once its turn has come: a second queue message of the same delivery
            # (a notice routed twice) may have sent it meanwhile
            await self._deliver(destination, await self.ledger.get(submission_id), delivery.attempt)

    async def _deliver(
        self, destination: Destination, submission: Submission, attempt: int
    ) -> None:
        redriven = submission.status in REDRIVEN and attempt == 1
        if submission.status not in OPEN and not redriven:
            return  # delivered (or cancelled) before: a redelivery of its queue message
        if await self.switches.paused(destination.name):
            raise KeepRetryingError(f"{destination.name} is paused", destination.retry_every_s)
        if (earlier := await self._earlier_open(submission)) is not None:
            waiting = f"waits for {earlier.id}, an earlier message of the patient"
            raise KeepRetryingError(waiting, destination.retry_every_s)
        expected = (*OPEN, *REDRIVEN) if redriven else OPEN
        if await self.ledger.claim(submission.id, expected, datetime.now(UTC)) is None:
            return  # another process took it meanwhile
        started = datetime.now(UTC)
        sent = await self._send(destination, submission)
        await self._record(destination, submission, started, sent, attempt)

    async def _send(self, destination: Destination, submission: Submission) -> Sent:
        """The transport's answer; whatever else goes wrong on the way (a receiver that never
        answers past the time a delivery may take, an exchange that is gone, an answer that is
        no text) is a failed attempt too, recorded and retried, never a delivery left sending."""
        try:
            async with asyncio.timeout(self.send_timeout_s):
                return await self.transports.send(destination, submission.id, submission.payload)
        except Exception as exc:
            log_event(
                log,
                "delivery_failed",
                logging.WARNING,
                exc_info=not isinstance(exc, TimeoutError | JianhuError),
                destination=destination.name,
                submission=submission.id,
            )
            error = "no answer in time" if isinstance(exc, TimeoutError) else type(exc).__name__
            return Sent(FAILED, "", f"{error}: {mask_text(str(exc))[:300]}", error)

    async def _earlier_open(self, submission: Submission) -> Submission | None:
        """An earlier delivery of the same patient to the same destination not yet done."""
        if not submission.business_key or not submission.correlations:
            return None
        query = LedgerQuery(
            adapter=ADAPTER,
            interface=submission.interface,
            business_key=submission.business_key,
            statuses=(PENDING, SENDING, FAILED),
            limit=1000,
        )
        mine = submission.correlations[0]
        for other in await self.ledger.search(query):
            if other.id != submission.id and other.correlations and other.correlations[0] < mine:
                return other
        return None

    async def _record(
        self, destination: Destination, submission: Submission, started: datetime, sent: Sent,
        attempt: int,
    ) -> None:  # fmt: skip
        record = Attempt(
            number=len(submission.attempts) + 1,
            started_at=started,
            finished_at=datetime.now(UTC),
            outcome=sent.outcome,
            request="",  # the payload is the request: kept once, in the submission
            response=sent.answer,
            error=sent.error or (f"answered {sent.code}" if sent.outcome == REJECTED else ""),
        )
        if sent.outcome == ACCEPTED:
            await self.ledger.finish(submission.id, record, "accepted")
            return
        if sent.outcome == REJECTED:
            await self.ledger.finish(submission.id, record, LEDGER_REJECTED)
            raise PermanentError(f"{destination.name} answered {sent.code}: {sent.error}")
        if destination.max_attempts and attempt >= destination.max_attempts:
            await self.ledger.finish(submission.id, record, DEAD)
            raise PermanentError(f"{destination.name}: gave up after {attempt} attempts")
        # the bus decides when it comes back; the ledger says roughly when, for a person
        soon = datetime.now(UTC) + timedelta(seconds=1)
        await self.ledger.finish(submission.id, record, FAILED, next_attempt_at=soon)
        raise KeepRetryingError(
            f"{destination.name}: {sent.error or 'not delivered'}", destination.retry_every_s
        )

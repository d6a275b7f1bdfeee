"""The delivery engine: every business submission goes through the ledger.

``submit`` records an upload before anything is sent and is idempotent: the same business key
with the same content is not sent again. Changed content for an accepted upload is cancelled
first where the interface demands it, and the re-upload waits until the cancellation is
accepted; changed content for an upload not yet accepted supersedes it. ``attempt`` claims a
submission (so two workers never send it twice), sends it, and records the attempt: accepted
and rejected are final, a transport failure is resent with exponential backoff and jitter up
to a limit, then the submission is dead until a person redrives it."""

import hashlib
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import orjson

from adapters.framework.interface import Interface, ReceiverAnswer, Reception
from adapters.framework.transport import Transport, TransportError
from hub.base import correlation
from hub.base.envelope import new_id
from hub.base.json import Json
from hub.base.logs import log_event
from store.ledger import (
    ACCEPTED,
    CANCELLED,
    DEAD,
    FAILED,
    OPEN,
    PENDING,
    REJECTED,
    Attempt,
    Ledger,
    LedgerQuery,
    Submission,
)

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class RetryPolicy:
    first_delay_s: float = 30.0
    max_delay_s: float = 3600.0
    max_attempts: int = 10

    def delay(self, failures: int, rng: random.Random) -> timedelta:
        """Exponential, capped, with full jitter in its upper half (receivers that come back
        after an outage are not hit by every waiting submission in the same second)."""
        ceiling = min(self.max_delay_s, self.first_delay_s * 2 ** (failures - 1))
        return timedelta(seconds=ceiling * (0.5 + 0.5 * rng.random()))


@dataclass
class Adapter:
    name: str
    transport: Transport
    interfaces: Mapping[str, Interface]

    def interface(self, name: str) -> Interface:
        try:
            return self.interfaces[name]
        except KeyError:
            raise ValueError(f"{self.name} has no interface {name!r}") from None


def content_hash(payload: Json) -> str:
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass
class Courier:
    ledger: Ledger
    adapters: Mapping[str, Adapter]
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Clock = lambda: datetime.now(UTC)
    rng: random.Random = field(default_factory=random.Random)

    async def submit(
        self,
        adapter: str,
        interface: str,
        business_key: str,
        payload: Json,
        correlations: Sequence[str] = (),
    ) -> Submission:
        """Send ``payload`` unless the same content was sent already. ``correlations``: those
        of the resource versions it was built from, so the messages that led to it are traced
        to it (``hub.base.correlation.of_resource``)."""
        target = self.adapters[adapter].interface(interface)
        digest = content_hash(payload)
        latest = await self.ledger.latest(adapter, interface, business_key)
        if latest is not None and latest.content_hash == digest and latest.status != CANCELLED:
            return latest  # the same content: sent already, or on its way
        replaces = ""
        if latest is not None and latest.status in OPEN:
            # never accepted: the new content takes its place (one in flight may still land;
            # the cancellation of an accepted upload is how that is undone)
            await self.ledger.set_status(latest.id, CANCELLED, "superseded by newer content")
            replaces = latest.id
        if target.cancel is not None:
            # the upload the receiver holds is withdrawn first, even when a later version was
            # held, refused or superseded in between
            accepted = await self._accepted_upload(adapter, interface, business_key, latest)
            if accepted is not None and accepted.content_hash == digest:
                return accepted  # the receiver holds this content already
            if accepted is not None:
                await self._cancel_accepted(accepted, correlations)
                replaces = accepted.id
        upload = self._new(adapter, interface, business_key, "upload", payload, replaces=replaces)
        await self.ledger.add(replace(upload, correlations=tuple(correlations)))
        return await self.attempt(upload.id)

    async def refuse(
        self,
        adapter: str,
        interface: str,
        business_key: str,
        payload: Json,
        problems: str,
        correlations: Sequence[str] = (),
    ) -> Submission:
        """Record a submission that is not sent because our own checks found it would be
        refused (a missing field, a code outside its value domain): rejected, with the
        problems, for a person to fix at the source. The same content is recorded once."""
        digest = content_hash(payload)
        latest = await self.ledger.latest(adapter, interface, business_key)
        if latest is not None and latest.content_hash == digest:
            return latest
        refused = self._new(adapter, interface, business_key, "upload", payload)
        now = self.clock()
        refused = replace(
            refused,
            status=REJECTED,
            error=f"not sent: {problems}",
            updated_at=now,
            correlations=tuple(correlations),
        )
        await self.ledger.add(refused)
        return refused

    async def attempt(self, id: str) -> Submission:
        submission = await self.ledger.get(id)
        if submission.adapter not in self.adapters:
            raise ValueError(f"the adapter {submission.adapter!r} is not configured here")
        if await self._waits_for_cancellation(submission):
            return submission
        claimed = await self.ledger.claim(id, (PENDING, FAILED), self.clock())
        if claimed is None:
            return await self.ledger.get(id)  # another worker has it, or it is settled
        adapter = self.adapters[claimed.adapter]
        request = adapter.interface(claimed.interface).request(orjson.loads(claimed.payload))
        started = self.clock()
        try:
            response = await adapter.transport.send(request)
            answer = adapter.interface(claimed.interface).classify(response)
            received = response.body.decode(errors="replace")
        except TransportError as exc:
            answer, received = ReceiverAnswer(Reception.FAILED, str(exc)), str(exc)
        return await self._record(
            claimed, request.body.decode(errors="replace"), received, answer, started
        )

    async def run_due(self, limit: int = 100) -> int:
        """One pass over what is due (new, and failed whose backoff has passed)."""
        sent = 0
        # only the configured adapters': others wait for their configuration, and a backlog of
        # theirs (or the destinations', which deliver through their own queues) must not fill
        # every batch
        for submission in await self.ledger.due(self.clock(), limit, list(self.adapters)):
            await self.attempt(submission.id)
            sent += 1
        return sent

    async def cancel(self, id: str) -> Submission:
        """An operator's cancel: an accepted upload is withdrawn at the receiver, anything not
        yet accepted is simply not sent."""
        submission = await self.ledger.get(id)
        _not_a_call(submission)
        if submission.status == ACCEPTED:
            origin = correlation.current()  # the operator's request: its trace shows this
            return await self._cancel_accepted(
                submission, (origin.correlation,) if origin is not None else ()
            )
        if submission.status in (*OPEN, DEAD, REJECTED):
            return await self.ledger.set_status(id, CANCELLED, "cancelled by an operator")
        raise ValueError(f"a {submission.status} submission cannot be cancelled")

    async def retry_now(self, id: str) -> Submission:
        """Send again at once: a failed, dead or (after a fix) rejected submission."""
        submission = await self.ledger.get(id)
        _not_a_call(submission)
        if submission.status not in (FAILED, DEAD, REJECTED):
            raise ValueError(f"a {submission.status} submission is not retried")
        if submission.adapter not in self.adapters:
            raise ValueError(f"the adapter {submission.adapter!r} is not configured here")
        await self.ledger.set_status(id, PENDING)
        return await self.attempt(id)

    async def redrive(self, adapter: str) -> int:
        dead = await self.ledger.search(
            LedgerQuery(adapter=adapter, statuses=(DEAD,), limit=10_000)
        )
        for submission in dead:
            await self.ledger.set_status(submission.id, PENDING)
        return len(dead)

    async def _accepted_upload(
        self, adapter: str, interface: str, business_key: str, latest: Submission | None
    ) -> Submission | None:
        """The upload of this key the receiver holds now (accepted, not withdrawn)."""
        if latest is not None and latest.status == ACCEPTED:
            return latest
        query = LedgerQuery(
            adapter=adapter,
            interface=interface,
            business_key=business_key,
            statuses=(ACCEPTED,),
            limit=1,
        )
        found = [s for s in await self.ledger.search(query) if s.kind == "upload"]
        return found[0] if found else None

    async def _cancel_accepted(self, upload: Submission, correlations: Sequence[str]) -> Submission:
        target = self.adapters[upload.adapter].interface(upload.interface)
        if target.cancel is None or target.cancel_payload is None:
            raise ValueError(f"{upload.adapter}/{upload.interface} has no cancellation")
        payload = target.cancel_payload(orjson.loads(upload.payload), upload.external_id)
        cancellation = self._new(
            upload.adapter, target.cancel, upload.business_key, "cancel", payload, cancels=upload.id
        )
        await self.ledger.add(replace(cancellation, correlations=tuple(correlations)))
        return await self.attempt(cancellation.id)

    async def _waits_for_cancellation(self, submission: Submission) -> bool:
        """A re-upload is held back until the receiver has accepted the cancellation of the
        upload it replaces, where the interface demands that order."""
        if not submission.replaces:
            return False
        target = self.adapters[submission.adapter].interface(submission.interface)
        if not target.cancel_before_reupload or target.cancel is None:
            return False
        cancellation = await self.ledger.latest(
            submission.adapter, target.cancel, submission.business_key, kind="cancel"
        )
        replaced = await self.ledger.get(submission.replaces)
        if replaced.status != ACCEPTED:
            return False  # it was never accepted: nothing to withdraw first
        return cancellation is None or cancellation.status != ACCEPTED

    async def _record(
        self,
        claimed: Submission,
        sent: str,
        received: str,
        answer: ReceiverAnswer,
        started: datetime,
    ) -> Submission:
        number = len(claimed.attempts) + 1
        outcome = answer.outcome
        attempt = Attempt(
            number, started, self.clock(), outcome.value, sent, received, answer.detail
        )
        status, next_at = outcome.value, None
        if outcome is Reception.FAILED:
            if number >= self.retry.max_attempts:
                status = DEAD
            else:
                next_at = self.clock() + self.retry.delay(number, self.rng)
        log_event(
            log,
            "delivery",
            logging.INFO if outcome is Reception.ACCEPTED else logging.WARNING,
            adapter=claimed.adapter,
            interface=claimed.interface,
            submission=claimed.id,
            attempt=number,
            status=status,
        )
        finished = await self.ledger.finish(
            claimed.id, attempt, status, next_at, answer.external_id
        )
        if finished.kind == "cancel" and status == ACCEPTED and finished.cancels:
            await self.ledger.set_status(finished.cancels, CANCELLED, f"withdrawn by {finished.id}")
            await self._release_reupload(finished)
        return finished

    async def _release_reupload(self, cancellation: Submission) -> None:
        """The cancellation is accepted: the re-upload that waited for it goes now."""
        waiting = await self.ledger.latest(
            cancellation.adapter,
            self._upload_interface(cancellation),
            cancellation.business_key,
        )
        if (
            waiting is not None
            and waiting.replaces == cancellation.cancels
            and waiting.status == PENDING
        ):
            await self.attempt(waiting.id)

    def _upload_interface(self, cancellation: Submission) -> str:
        adapter = self.adapters[cancellation.adapter]
        return next(
            (name for name, i in adapter.interfaces.items() if i.cancel == cancellation.interface),
            "",
        )

    def _new(
        self,
        adapter: str,
        interface: str,
        business_key: str,
        kind: str,
        payload: Json,
        cancels: str = "",
        replaces: str = "",
    ) -> Submission:
        now = self.clock()
        return Submission(
            id=new_id(),
            adapter=adapter,
            interface=interface,
            business_key=business_key,
            kind=kind,
            payload=orjson.dumps(payload).decode(),
            content_hash=content_hash(payload),
            status=PENDING,
            created_at=now,
            updated_at=now,
            cancels=cancels,
            replaces=replaces,
        )


def _not_a_call(submission: Submission) -> None:
    """A synchronous call (an insurance transaction the HIS made) is on record only: sending it
    again or marking it cancelled here would hide what the platform did; a reversal does that."""
    if submission.kind == "call":
        raise ValueError("a synchronous call is not retried or cancelled by the ledger")

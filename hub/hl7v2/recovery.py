"""Messages archived but never published (the process died between the two, or lost the bus and
its sender never sent again): at start and then every claim grace period, each is published
with the attempt number it had, or flagged ``stranded`` for a person when so configured, and
listed in the log. Several processes may sweep at once: a take-over in the archive lets one of
them publish each message."""

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from hub.base.logs import log_event
from hub.base.tasks import cancel
from hub.hl7v2.publishing import Publisher
from store.archive import STRANDED

log = logging.getLogger(__name__)
BATCH = 500
_LISTED = 20  # archive ids named in the log line; the rest are counted


class StrandedMessages:
    def __init__(self, publisher: Publisher, flag_only: bool) -> None:
        self.publisher = publisher
        self.flag_only = flag_only
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="stranded-messages")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    async def sweep(self) -> int:
        """Publish (or flag) what is stranded now; returns how many."""
        archive, grace = self.publisher.archive, self.publisher.claim_grace_s
        stale_before = datetime.now(UTC) - timedelta(seconds=grace)
        handled: list[str] = []
        while found := await archive.stranded(stale_before, BATCH):
            progressed = False
            for message in found:
                taken = await archive.take_over(message.id, self.publisher.claimant, stale_before)
                if taken is None:
                    continue  # published meanwhile, or another process took it
                progressed = True
                if self.flag_only:
                    await archive.set_status(
                        taken.id, STRANDED, "archived but never published: replay it"
                    )
                elif not await self.publisher.publish(taken):
                    return len(handled)  # the bus is down: the next sweep tries again
                handled.append(taken.id)
            if not progressed:
                break
        if handled:
            log_event(
                log,
                "stranded_messages",
                logging.WARNING,
                action="flagged" if self.flag_only else "published",
                count=len(handled),
                archive_ids=handled[:_LISTED],
            )
        return len(handled)

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # the archive is failing now: the next round tries again
                log_event(log, "stranded_sweep_failed", logging.ERROR, exc_info=True)
            await asyncio.sleep(self.publisher.claim_grace_s)

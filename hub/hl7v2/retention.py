"""The archive's retention policy: per message type, how many days messages are kept; older
ones are deleted for good (raw bytes, text and patient index), checked every hour."""

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from hub.base.logs import log_event
from hub.base.tasks import cancel
from store.archive import MessageArchive

log = logging.getLogger(__name__)
INTERVAL_S = 3600.0


async def apply_retention(archive: MessageArchive, days_by_type: dict[str, float]) -> int:
    now = datetime.now(UTC)
    purged = 0
    for message_type, days in days_by_type.items():
        purged += await archive.purge(message_type, now - timedelta(days=days))
    return purged


class Retention:
    def __init__(self, archive: MessageArchive, days_by_type: dict[str, float]) -> None:
        self.archive, self.days_by_type = archive, days_by_type
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.days_by_type:
            self._task = asyncio.create_task(self._run(), name="archive-retention")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                purged = await apply_retention(self.archive, self.days_by_type)
                if purged:
                    log_event(log, "archive_purged", messages=purged)
            except Exception as exc:  # the store is failing now: try again next round
                log_event(
                    log, "archive_purge_failed", level=logging.ERROR, error=type(exc).__name__
                )
            await asyncio.sleep(INTERVAL_S)

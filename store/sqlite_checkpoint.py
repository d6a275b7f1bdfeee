"""WAL checkpoints mostly off the event loop. SQLite's automatic checkpoint runs inside
whichever COMMIT crosses the threshold, copying pages into the database file and syncing it
while every request waits; here a thread with its own connection does the copying (PASSIVE: it
never blocks a writer), the write connection's automatic checkpoint is off, and the write
connection only catches up the last frames once a second (``SqliteResources``)."""

import asyncio
import sqlite3
from pathlib import Path

from hub.base.tasks import cancel

INTERVAL_S = 0.5


class Checkpointer:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sqlite-checkpoint")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        await asyncio.to_thread(self._checkpoint)  # leave a short WAL behind

    def _checkpoint(self) -> None:
        db = sqlite3.connect(self._path, isolation_level=None)
        try:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error:
            pass  # busy or closing: the next round catches up
        finally:
            db.close()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(INTERVAL_S)
            await asyncio.to_thread(self._checkpoint)

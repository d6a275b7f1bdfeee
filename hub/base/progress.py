"""How long work (a back-fill, an export, a rebuild) shows where it stands, three ways at once:
a bar on a terminal (days done, rate, time left), a progress line in the log every
``LOG_EVERY`` when there is no terminal, and a ``WorkProgress`` in the store that the ops API
shows (``GET /ops/progress``) whichever process does the work.

The stored checkpoint is what lets the work carry on after an interruption: the work names the
last unit it finished for good, and a resumed run starts after it."""

import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TextIO

from tqdm import tqdm

from hub.base.logs import log_event

log = logging.getLogger(__name__)
LOG_EVERY = timedelta(seconds=10)
SAVE_EVERY = timedelta(seconds=1)  # the store is told at most this often, and at the end
RUNNING, FINISHED, STOPPED = "running", "finished", "stopped"


@dataclass(frozen=True)
class WorkProgress:
    """Where a long piece of work stands, kept in the store (``JobStore.save_progress``) so
    that the ops API of any hub process shows the progress of work another process (the CLI)
    does, and so that work stopped half-way carries on from its checkpoint."""

    work: str  # e.g. "epidemic-backfill"
    done: int
    total: int
    unit: str  # what is counted: "days", "messages"
    started: datetime
    updated: datetime
    state: str = RUNNING  # RUNNING, FINISHED or STOPPED (failed or interrupted)
    checkpoint: str = ""  # what a resumed run starts after (the last day delivered)
    detail: str = ""  # the range asked for, or why it stopped; never patient data
    resumed_at: int = 0  # units found done when this run began (a resumed run)


Save = Callable[[WorkProgress], Awaitable[None]]  # JobStore.save_progress


class ProgressReporter:
    def __init__(
        self,
        save: Save,
        work: str,
        unit: str,
        terminal: TextIO | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``terminal``: where the bar is drawn; None draws none (the hub's scheduled runs,
        and a CLI whose stderr is not a terminal: then the log has the progress lines)."""
        self._save_progress, self._work, self._unit = save, work, unit
        self._terminal, self._clock = terminal, clock
        self._bar: tqdm | None = None
        self._progress: WorkProgress | None = None
        self._began_at_done = 0
        self._began = time.monotonic()
        self._logged = self._saved = datetime.min.replace(tzinfo=UTC)

    @classmethod
    def for_command(cls, save: Save, work: str, unit: str) -> "ProgressReporter":
        """A command's reporter: a bar when stderr is a terminal, log lines otherwise."""
        return cls(save, work, unit, sys.stderr if sys.stderr.isatty() else None)

    async def begin(
        self, total: int, done: int = 0, checkpoint: str = "", detail: str = ""
    ) -> None:
        now = self._clock()
        self._progress = WorkProgress(
            self._work, done, total, self._unit, now, now, RUNNING, checkpoint, detail, done
        )
        self._began_at_done, self._began = done, time.monotonic()
        if self._terminal is not None:
            self._bar = tqdm(
                total=total,
                initial=done,
                unit=f" {self._unit}",
                file=self._terminal,
                desc=self._work,
            )
        log_event(log, "work-started", work=self._work, done=done, total=total, detail=detail)
        await self._save(force=True)

    async def advance(self, count: int = 1, checkpoint: str | None = None) -> None:
        current = self._current()
        self._progress = replace(
            current,
            done=current.done + count,
            updated=self._clock(),
            checkpoint=current.checkpoint if checkpoint is None else checkpoint,
        )
        if self._bar is not None:
            self._bar.update(count)
        elif self._progress.updated - self._logged >= LOG_EVERY:
            self._log_line()
        await self._save()

    async def finish(self, detail: str = "") -> None:
        await self._end(FINISHED, detail)

    async def stop(self, reason: str) -> None:
        """The work ended before its end (an error, an interruption): the checkpoint stays."""
        await self._end(STOPPED, reason)

    @property
    def rate(self) -> float:
        """Units a second in this run (a resumed run's earlier units do not count)."""
        elapsed = time.monotonic() - self._began
        done = self._current().done - self._began_at_done
        return done / elapsed if elapsed > 0 else 0.0

    def _current(self) -> WorkProgress:
        if self._progress is None:
            raise RuntimeError("progress reported before begin()")
        return self._progress

    def _log_line(self) -> None:
        current = self._current()
        rate = self.rate
        left = (current.total - current.done) / rate if rate > 0 else None
        log_event(
            log,
            "work-progress",
            work=self._work,
            done=current.done,
            total=current.total,
            unit=self._unit,
            rate=f"{rate:.1f}/s",
            left=f"{left:.0f}s" if left is not None else "?",
        )
        self._logged = current.updated

    async def _end(self, state: str, detail: str) -> None:
        current = self._current()
        self._progress = replace(
            current, state=state, updated=self._clock(), detail=detail or current.detail
        )
        if self._bar is not None:
            self._bar.close()
        level = logging.INFO if state == FINISHED else logging.WARNING
        log_event(
            log,
            "work-finished" if state == FINISHED else "work-stopped",
            level,
            work=self._work,
            done=current.done,
            total=current.total,
            rate=f"{self.rate:.1f}/s",
            detail=self._progress.detail,
        )
        await self._save(force=True)

    async def _save(self, force: bool = False) -> None:
        current = self._current()
        if force or current.updated - self._saved >= SAVE_EVERY:
            await self._save_progress(current)
            self._saved = current.updated

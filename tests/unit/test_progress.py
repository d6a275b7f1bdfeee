"""Progress of long work: a bar on a terminal, log lines without one, the store told (at most
once a second, and at the start and the end), the checkpoint kept when the work stops."""

import io
import logging
from datetime import UTC, datetime, timedelta

import pytest

from hub.base import progress as progress_module
from hub.base.progress import FINISHED, RUNNING, STOPPED, ProgressReporter, WorkProgress


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Saved:
    def __init__(self) -> None:
        self.seen: list[WorkProgress] = []

    async def __call__(self, progress: WorkProgress) -> None:
        self.seen.append(progress)


async def test_a_terminal_gets_a_bar_and_the_store_the_progress() -> None:
    terminal, saved, clock = io.StringIO(), Saved(), Clock()
    reporter = ProgressReporter(saved, "epidemic-backfill", "days", terminal, clock)
    await reporter.begin(30, detail="2026-11-01..2026-11-30")
    for day in range(30):
        clock.now += timedelta(milliseconds=400)
        await reporter.advance(1, f"2026-11-{day + 1:02d}")
    await reporter.finish("30 sent")
    assert "30/30" in terminal.getvalue()
    assert "days" in terminal.getvalue()
    first, *middle, last = saved.seen
    assert (first.state, first.done) == (RUNNING, 0)
    assert (last.state, last.done, last.checkpoint, last.detail) == (
        FINISHED,
        30,
        "2026-11-30",
        "30 sent",
    )
    assert 8 <= len(middle) <= 13  # about once a second of the 12 s, not once a day


async def test_without_a_terminal_the_log_has_progress_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    reporter = ProgressReporter(Saved(), "epidemic-backfill", "days", None, clock)
    caplog.set_level(logging.INFO, progress_module.__name__)
    await reporter.begin(100)
    for _ in range(100):
        clock.now += timedelta(seconds=1)
        await reporter.advance()
    lines = [r for r in caplog.records if getattr(r, "event", "") == "work-progress"]
    assert 9 <= len(lines) <= 11  # one every ten seconds of work
    assert lines[-1].total == 100  # type: ignore[attr-defined]


async def test_a_stopped_run_keeps_its_checkpoint_and_says_why() -> None:
    saved = Saved()
    reporter = ProgressReporter(saved, "w", "days", None, Clock())
    await reporter.begin(10, done=4, checkpoint="2026-01-04")
    await reporter.advance(1, "2026-01-05")
    await reporter.stop("ConnectionError: the platform went away")
    last = saved.seen[-1]
    assert (last.state, last.done, last.checkpoint, last.resumed_at) == (
        STOPPED,
        5,
        "2026-01-05",
        4,
    )
    assert last.detail == "ConnectionError: the platform went away"


async def test_progress_before_begin_is_a_mistake() -> None:
    with pytest.raises(RuntimeError):
        await ProgressReporter(Saved(), "w", "days").advance()

"""Background tasks of the runtime's parts (outbox relay, audit trail, checkpoints, retention)."""

import asyncio
import contextlib
import time
from weakref import WeakValueDictionary


async def cancel(task: "asyncio.Task[None] | None") -> None:
    """Cancel a background loop and wait until it has stopped."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def wait_event(event: asyncio.Event, timeout_s: float) -> None:
    """Until ``event`` is set or ``timeout_s`` has passed. Not ``asyncio.wait_for``: on Python
    3.11 it loses a cancellation that arrives just as the event is set, and a background loop
    cancelled at that moment never stops (a shutdown that hangs)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            await event.wait()


class Turns:
    """Long work on the loop in turns: ``await turns.take()`` between items hands the loop to
    the others (ACKs, HTTP) once this work has held it for ``slice_s``. A change set of a
    hundred results, each checked for critical values and moved on the wall, is tens of
    milliseconds of Python."""

    def __init__(self, slice_s: float = 0.005) -> None:
        self.slice_s = slice_s
        self._since = time.perf_counter()

    async def take(self) -> None:
        if time.perf_counter() - self._since >= self.slice_s:
            await asyncio.sleep(0)
            self._since = time.perf_counter()


class Passes:
    """The passes of a background loop, counted so a caller can wait for one that began after
    it asked: after a test moves a clock, the loop has looked at it. The loop calls ``begin``
    and ``end`` around each pass; ``after(mark)`` returns once a pass begun after ``mark`` (the
    ``begun`` count read before waking the loop) has ended."""

    def __init__(self) -> None:
        self.begun = self.ended = 0
        self._ended = asyncio.Condition()

    def begin(self) -> None:
        self.begun += 1

    async def end(self) -> None:
        async with self._ended:
            self.ended += 1
            self._ended.notify_all()

    async def after(self, mark: int) -> None:
        async with self._ended:
            await self._ended.wait_for(lambda: self.ended > mark)


class KeyedLocks:
    """One asyncio lock per key (a patient, a tube), made when first asked for and gone when
    nobody holds or waits for it: a process that sees millions of keys keeps none of them."""

    def __init__(self) -> None:
        self._locks: WeakValueDictionary[str, asyncio.Lock] = WeakValueDictionary()

    def __call__(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

"""Background tasks of the runtime's parts (outbox relay, audit trail, checkpoints, retention)."""

import asyncio
import contextlib


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

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

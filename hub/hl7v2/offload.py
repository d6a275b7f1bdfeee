"""Big messages normalized in a worker process of their own.

A result message of tens of thousands of OBX takes many seconds of Python: parsing, mapping,
index extraction, and the store writer's work between its SQLite calls. In the hub's process
that work would hold the interpreter lock against the event loop, and every other sender's ACK
would wait behind it (seconds, measured); a thread does not help, the lock is the same. In a
worker process it has an interpreter of its own, and that process ends after each message, so
the memory it took goes back to the system. The worker opens the same store (the SQLite file
or the MongoDB database) and writes the message as one plan, as the hub itself would; the hub's
event relay then publishes its events from the store.
"""

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from hub.base import correlation
from hub.base.correlation import Origin, within
from hub.hl7v2.mapping import normalize
from hub.hl7v2.message import Message
from hub.hl7v2.persist import persist
from store.factory import make_store

# Past this size a message goes to the worker process (about 2,500 ordinary OBX segments).
BIG_MESSAGE_CHARS = 256 * 1024


class BigMessages:
    def __init__(self, mongo_url: str, data_dir: Path) -> None:
        self._mongo_url, self._data_dir = mongo_url, data_dir
        self._pool: ProcessPoolExecutor | None = None

    async def normalize(self, text: str, charset: str) -> list[str]:
        """Map and store a big message in the worker; returns the ``Type/id`` it produced, or
        raises what the mapping raised (``UnmappedMessageError``, ``ValueError``)."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1
            )
        loop = asyncio.get_running_loop()
        # a process of its own does not inherit the context: the origin goes along by hand
        args = (self._mongo_url, str(self._data_dir), text, charset, correlation.current())
        return await loop.run_in_executor(self._pool, _normalize_and_store, *args)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.to_thread(pool.shutdown, True, cancel_futures=True)


def _normalize_and_store(
    mongo_url: str, data_dir: str, text: str, charset: str, origin: Origin | None
) -> list[str]:
    """In the worker process."""
    with within(origin):
        return asyncio.run(_work(mongo_url, Path(data_dir), text, charset))


async def _work(mongo_url: str, data_dir: Path, text: str, charset: str) -> list[str]:
    store = make_store(mongo_url, data_dir)
    await store.open()
    try:
        return await persist(store.resources, normalize(Message(text, charset)))
    finally:
        await store.close()

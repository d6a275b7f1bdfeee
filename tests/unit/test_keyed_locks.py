"""One lock per key, in arrival order, and none kept for a key nobody uses any more."""

import asyncio
import gc

from hub.base.tasks import KeyedLocks


async def test_one_holder_per_key_in_arrival_order_and_no_lock_kept_after() -> None:
    locks = KeyedLocks()
    order: list[str] = []
    release = asyncio.Event()
    holding = {name: asyncio.Event() for name in "abc"}

    async def hold(key: str, name: str) -> None:
        async with locks(key):
            order.append(name)
            holding[name].set()
            await release.wait()

    tasks = [asyncio.create_task(hold(k, n)) for k, n in (("p1", "a"), ("p1", "b"), ("p2", "c"))]
    await holding["c"].wait()  # started last: a and b have reached their locks before it
    assert order == ["a", "c"]  # p1's second waits; p2 is not held up by p1
    release.set()
    await asyncio.gather(*tasks)
    assert order == ["a", "c", "b"]
    del tasks
    gc.collect()
    assert len(locks._locks) == 0

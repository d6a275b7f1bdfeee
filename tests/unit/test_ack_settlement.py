"""The coalesced settlements of one channel, against a model of the broker's bookkeeping: a
frame naming a tag that is not outstanding closes the channel, as RabbitMQ does, and a multiple
ack must never reach a delivery that is still running, to be requeued, dropped or given up."""

import asyncio
import random
from typing import Any, cast

import pytest
from aiormq.abc import AbstractChannel

from hub.bus.acks import AckCoalescer, Settlement


class ModelChannel:
    """Outstanding deliveries and how each was settled; every frame yields to the loop a
    random number of times, so flushes would interleave if two could run at once."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.outstanding: set[int] = set()
        self.settled: dict[int, Settlement] = {}
        self.errors: list[str] = []
        self.is_closed = False
        self.frames = 0

    async def _frame(self) -> None:
        self.frames += 1
        for _ in range(self.rng.randrange(3)):
            await asyncio.sleep(0)

    def _settle(self, tag: int, how: Settlement) -> None:
        if tag not in self.outstanding:
            self.errors.append(f"unknown delivery tag {tag}")
            self.is_closed = True
            return
        self.outstanding.discard(tag)
        self.settled[tag] = how

    async def basic_ack(self, tag: int, multiple: bool = False) -> None:
        await self._frame()
        for covered in sorted(t for t in self.outstanding if t <= tag) if multiple else [tag]:
            self._settle(covered, Settlement.ACK)

    async def basic_nack(self, tag: int, requeue: bool = True) -> None:
        await self._frame()
        self._settle(tag, Settlement.REQUEUE)

    async def basic_reject(self, tag: int, requeue: bool = True) -> None:
        await self._frame()
        self._settle(tag, Settlement.DROP)


async def run_handler(
    acks: AckCoalescer, tag: int, how: Settlement, rng: random.Random, give_up: asyncio.Event
) -> None:
    for _ in range(rng.randrange(40)):
        await asyncio.sleep(0)
    if how is Settlement.ABANDONED:
        await give_up.wait()
        acks.abandon(tag)
    else:
        acks.settle(tag, how)


@pytest.mark.parametrize("seed", range(12))
async def test_every_delivery_is_settled_once_as_its_handler_said(seed: int) -> None:
    rng = random.Random(seed)
    channel = ModelChannel(rng)
    acks = AckCoalescer(cast(AbstractChannel, channel))
    outcomes = rng.choices(
        [Settlement.ACK, Settlement.REQUEUE, Settlement.DROP, Settlement.ABANDONED],
        weights=[90, 4, 4, 2],
        k=2000,
    )
    give_up = asyncio.Event()
    tasks = []
    for tag, how in enumerate(outcomes, start=1):
        channel.outstanding.add(tag)
        acks.received(tag)
        tasks.append(asyncio.ensure_future(run_handler(acks, tag, how, rng, give_up)))
    settling = [
        t for t, how in zip(tasks, outcomes, strict=True) if how is not Settlement.ABANDONED
    ]
    await asyncio.wait(settling[: len(settling) // 2])
    give_up.set()  # the shutdown, half way: what is blocked is given up
    await asyncio.gather(*tasks)
    await acks.close()
    assert channel.errors == []
    expected: dict[int, Any] = {
        tag: how for tag, how in enumerate(outcomes, start=1) if how is not Settlement.ABANDONED
    }
    assert channel.settled == expected
    abandoned = {tag for tag, how in enumerate(outcomes, start=1) if how is Settlement.ABANDONED}
    assert channel.outstanding == abandoned
    assert channel.frames < len(expected)  # acks were coalesced


async def test_nothing_is_sent_on_a_closed_channel() -> None:
    channel = ModelChannel(random.Random(1))
    acks = AckCoalescer(cast(AbstractChannel, channel))
    channel.outstanding.add(1)
    acks.received(1)
    channel.is_closed = True
    acks.settle(1)
    await acks.close()
    assert channel.frames == 0


async def test_a_tag_never_handed_over_is_not_covered_by_a_multiple_ack() -> None:
    """Tags 1 and 3 were received and acked; tag 2 never reached the hub: no frame may
    cover it."""
    channel = ModelChannel(random.Random(2))
    channel.outstanding.update({1, 2, 3})
    acks = AckCoalescer(cast(AbstractChannel, channel))
    for tag in (1, 3):
        acks.received(tag)
        acks.settle(tag)
    await acks.close()
    assert channel.errors == []
    assert channel.outstanding == {2}

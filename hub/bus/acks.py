"""Settling the deliveries of one AMQP channel: coalesced acks, sent by one flusher, in order.

Acking every message with its own frame costs the client and the broker more than the handler
work of a small message, so settled deliveries wait a few milliseconds for company and the
longest settled run at the head goes as one ``multiple`` ack. Two rules keep that safe:

- one flusher per channel, sending its frames one after another: two flushes never overlap,
  so no frame can name a tag another frame already covered (the broker closes the channel on
  an unknown delivery tag and redelivers everything in flight);
- every settlement (ack, requeue, drop) goes through here, in tag order, and a ``multiple``
  ack covers only a run of acks at the head: never a delivery still in its handler, one to be
  requeued or dropped, or one given up at shutdown (left for the broker to requeue).

A delivery behind one that is still running is settled with its own frame, so one slow handler
never holds the others hostage. An ack is sent only after its message's handler returned and
its retry or dead-letter copy was confirmed; coalescing only changes how many frames carry it.
"""

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from enum import Enum

from aiormq.abc import AbstractChannel

from hub.base.logs import log_event
from hub.base.tasks import wait_event

log = logging.getLogger(__name__)

# Acks wait at most this long for company; a full batch goes at once. Both are far below any
# broker timeout, and the prefetch window bounds what a delay can hold back.
ACK_DELAY_S = 0.005
ACK_BATCH = 64


class Settlement(Enum):
    RUNNING = "running"  # in its handler
    ACK = "ack"
    REQUEUE = "requeue"  # nack, back to the queue (the retry copy could not be confirmed)
    DROP = "drop"  # reject without requeue: to the queue's dead-letter exchange
    ABANDONED = "abandoned"  # given up at shutdown: the broker requeues it when the channel closes


class AckCoalescer:
    def __init__(self, channel: AbstractChannel) -> None:
        self._channel = channel
        self._deliveries: OrderedDict[int, Settlement] = OrderedDict()  # tag order
        self._ready = 0  # settled and not yet sent
        self._floor = 0  # every delivery with a tag up to this one is settled on the wire
        self._settled_above: set[int] = (
            set()
        )  # tags above the floor settled with frames of their own
        self._hurry = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None

    def received(self, delivery_tag: int) -> None:
        self._deliveries[delivery_tag] = Settlement.RUNNING

    def settle(self, delivery_tag: int, how: Settlement = Settlement.ACK) -> None:
        if self._deliveries.get(delivery_tag) is not Settlement.RUNNING:
            return  # unknown (another channel's) or settled already
        self._deliveries[delivery_tag] = how
        self._ready += 1
        if how is not Settlement.ACK or self._ready >= ACK_BATCH:
            self._hurry.set()  # a requeue or drop should not wait for company
        self._start_flusher()

    def abandon(self, delivery_tag: int) -> None:
        """Never settled by the hub: it stays a barrier no ``multiple`` ack may cover."""
        if delivery_tag in self._deliveries:
            self._deliveries[delivery_tag] = Settlement.ABANDONED

    async def close(self) -> None:
        """Send what is settled now; called before the channel closes, never after."""
        self._hurry.set()
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        await self._send(self._take_frames())

    def _start_flusher(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush_loop())
            self._flusher.add_done_callback(_log_failure)

    async def _flush_loop(self) -> None:
        """The only sender of this channel's settlements; runs while there is work, then ends."""
        while self._ready:
            if self._ready < ACK_BATCH:
                await wait_event(self._hurry, ACK_DELAY_S)  # company for a multiple ack
            self._hurry.clear()
            frames = self._take_frames()
            if not frames:
                return  # what is settled waits behind a running delivery's tag: nothing yet
            await self._send(frames)

    def _take_frames(self) -> list[tuple[Settlement, int, bool]]:
        """(how, tag, multiple) in tag order, removed from the books as they are taken: a run
        of acks at the head as one multiple ack, anything else settled as its own frame.

        A multiple ack starts right above ``_floor``, the tag through which every delivery is
        settled on the wire, and covers only consecutive tags this channel handed to the hub:
        it cannot reach a delivery it never saw either."""
        frames: list[tuple[Settlement, int, bool]] = []
        run_end = None
        while self._deliveries:
            self._advance_floor()
            tag, how = next(iter(self._deliveries.items()))
            if tag != self._floor + 1 or how in (Settlement.RUNNING, Settlement.ABANDONED):
                break
            if how is Settlement.ACK:
                run_end = tag
            else:
                if run_end is not None:
                    frames.append((Settlement.ACK, run_end, True))
                    run_end = None
                frames.append((how, tag, False))
            self._floor = tag
            self._deliveries.popitem(last=False)
            self._ready -= 1
        if run_end is not None:
            frames.append((Settlement.ACK, run_end, True))
        behind = [
            (tag, how)
            for tag, how in self._deliveries.items()
            if how not in (Settlement.RUNNING, Settlement.ABANDONED)
        ]
        for tag, how in behind:
            frames.append((how, tag, False))
            del self._deliveries[tag]
            self._ready -= 1
            self._settled_above.add(tag)
        return frames

    def _advance_floor(self) -> None:
        while self._floor + 1 in self._settled_above:
            self._floor += 1
            self._settled_above.discard(self._floor)

    async def _send(self, frames: list[tuple[Settlement, int, bool]]) -> None:
        if self._channel.is_closed:
            return  # the broker requeues these; they come back as redeliveries
        senders: dict[Settlement, Callable[[int, bool], Awaitable[object]]] = {
            Settlement.ACK: lambda tag, multiple: self._channel.basic_ack(tag, multiple=multiple),
            Settlement.REQUEUE: lambda tag, _: self._channel.basic_nack(tag, requeue=True),
            Settlement.DROP: lambda tag, _: self._channel.basic_reject(tag, requeue=False),
        }
        for how, tag, multiple in frames:
            await senders[how](tag, multiple)


def _log_failure(task: "asyncio.Future[None]") -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log_event(
            log,
            "ack-failed",
            logging.WARNING,
            error=f"{type(exc).__name__}: {exc}",
            note="the broker will redeliver",
        )

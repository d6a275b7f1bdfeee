"""Coalesced acknowledgements for one AMQP channel.

Acking every message with its own frame costs the client and the broker more than the handler
work of a small message. Settled deliveries are instead acked once per event-loop turn: the
longest settled prefix with one ``multiple`` ack, any settled message behind a still-running
one individually (so one slow handler never holds the others' acks hostage).
An ack is still sent only after its message's handler returned and its retry or dead-letter
copy was confirmed; coalescing only changes how many frames carry the acks.
"""

import asyncio
import logging
from collections import OrderedDict

from aiormq.abc import AbstractChannel

from hub.logs import log_event

log = logging.getLogger(__name__)


# Acks wait at most this long for company; a full batch goes at once. Both are far below any
# broker timeout, and the prefetch window bounds what a delay can hold back.
ACK_DELAY_S = 0.005
ACK_BATCH = 64


class AckCoalescer:
    def __init__(self, channel: AbstractChannel) -> None:
        self._channel = channel
        self._outstanding: OrderedDict[int, bool] = OrderedDict()  # tag -> settled
        self._settled_waiting = 0
        self._timer: asyncio.TimerHandle | None = None

    def received(self, delivery_tag: int) -> None:
        self._outstanding[delivery_tag] = False

    def forget(self, delivery_tag: int) -> None:
        """A delivery that was rejected or cancelled: it must never be covered by a multi-ack."""
        self._outstanding.pop(delivery_tag, None)
        self._schedule(now=False)

    def settled(self, delivery_tag: int) -> None:
        if delivery_tag in self._outstanding:
            self._outstanding[delivery_tag] = True
            self._settled_waiting += 1
            self._schedule(now=self._settled_waiting >= ACK_BATCH)

    def _schedule(self, now: bool) -> None:
        if now:
            if self._timer is not None:
                self._timer.cancel()
            self._flush_now()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(ACK_DELAY_S, self._flush_now)

    def _flush_now(self) -> None:
        self._timer = None
        self._settled_waiting = 0
        task = asyncio.ensure_future(self.flush())
        task.add_done_callback(_log_failure)

    def _take_acks(self) -> tuple[int | None, list[int]]:
        """The highest tag of the settled prefix, and the settled tags behind an unsettled one."""
        prefix_end = None
        while self._outstanding:
            tag, settled = next(iter(self._outstanding.items()))
            if not settled:
                break
            prefix_end = tag
            self._outstanding.popitem(last=False)
        singles = [tag for tag, settled in self._outstanding.items() if settled]
        for tag in singles:
            del self._outstanding[tag]
        return prefix_end, singles

    async def close(self) -> None:
        """Send what is settled now; called before the channel closes, never after."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self.flush()

    async def flush(self) -> None:
        prefix_end, singles = self._take_acks()
        if self._channel.is_closed:
            return  # the broker requeues these; they come back as redeliveries
        if prefix_end is not None:
            await self._channel.basic_ack(prefix_end, multiple=True)
        for tag in singles:
            await self._channel.basic_ack(tag)


def _log_failure(task: "asyncio.Future[None]") -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log_event(
            log,
            "ack-failed",
            logging.WARNING,
            error=f"{type(exc).__name__}: {exc}",
            note="the broker will redeliver",
        )

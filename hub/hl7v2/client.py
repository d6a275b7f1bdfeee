"""The MLLP client for outbound HL7 (orders to the LIS and PACS): one connection reused
across messages (one message in flight at a time, as MLLP requires), waits for the ACK, tells
an accept (AA/CA) from a refusal (AE/AR/CE/CR), and on a transport failure reconnects and sends
again a bounded number of times. The result says what the delivery ledger records."""

import asyncio
import contextlib
import ssl
from dataclasses import dataclass

from hub.hl7v2.message import HL7ParseError, Message
from hub.hl7v2.mllp import FrameReader, frame

ACCEPTED, REJECTED, FAILED = "accepted", "rejected", "failed"


@dataclass(frozen=True)
class SendResult:
    outcome: str  # accepted | rejected (a person must look) | failed (transport: retry later)
    code: str = ""  # MSA-1
    ack: str = ""  # the ACK as received
    error: str = ""
    attempts: int = 1


class MllpClient:
    def __init__(
        self,
        host: str,
        port: int,
        charset: str = "utf-8",
        timeout_s: float = 30.0,
        attempts: int = 3,
        backoff_s: float = 1.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port, self.charset = host, port, charset
        self.timeout_s, self.attempts, self.backoff_s, self.tls = (
            timeout_s,
            attempts,
            backoff_s,
            tls,
        )
        self._reader: FrameReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    async def send(self, text: str) -> SendResult:
        control_id = Message(text).control_id  # a message we cannot parse is a bug: raise
        async with self._lock:
            error = ""
            for attempt in range(1, self.attempts + 1):
                try:
                    ack = await self._exchange(text)
                except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    await self._disconnect()
                    if attempt < self.attempts:
                        await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
                    continue
                except asyncio.CancelledError:
                    # cut off mid-exchange: its ACK may still come, and would be read as the
                    # next message's; a new connection starts clean
                    await asyncio.shield(self._disconnect())
                    raise
                result = _result(ack, control_id, attempt)
                if result.outcome == FAILED:  # an answer that was not this message's ACK:
                    await self._disconnect()  # the stream is out of step, start it anew
                return result
            return SendResult(FAILED, error=error, attempts=self.attempts)

    async def _exchange(self, text: str) -> str:
        if self._writer is None or self._writer.is_closing():
            stream, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=self.tls), self.timeout_s
            )
            self._reader = FrameReader(stream, 16 * 1024 * 1024)
        writer, frames = self._writer, self._reader
        if writer is None or frames is None:
            raise ConnectionResetError("not connected")
        writer.write(frame(text.encode(self.charset)))
        await writer.drain()
        answer = await asyncio.wait_for(frames.next(), self.timeout_s)
        if answer is None:
            raise ConnectionResetError("the receiver closed the connection without an ACK")
        return answer.payload.decode(self.charset, errors="replace")

    async def _disconnect(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        self._writer, self._reader = None, None

    async def close(self) -> None:
        async with self._lock:
            await self._disconnect()


def _result(ack: str, control_id: str, attempt: int) -> SendResult:
    try:
        msa = Message(ack).first("MSA")
    except HL7ParseError:
        msa = None
    if msa is None:
        return SendResult(FAILED, ack=ack, error="the answer is not an ACK", attempts=attempt)
    code = msa.value(1)
    if msa.value(2) != control_id:
        text = f"the ACK is for {msa.value(2)!r}, not {control_id!r}"
        return SendResult(FAILED, code, ack, text, attempt)
    if code in ("AA", "CA"):
        return SendResult(ACCEPTED, code, ack, attempts=attempt)
    return SendResult(REJECTED, code, ack, msa.value(3), attempt)

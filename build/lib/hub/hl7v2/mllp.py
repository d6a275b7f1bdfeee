"""MLLP framing: ``0x0B message 0x1C 0x0D``. Bytes between frames (line noise, a stray CR, a
sender's keep-alive) are skipped; a frame over the size limit is reported, so the listener can
answer AR and close."""

import asyncio
from dataclasses import dataclass

START, END, CR = b"\x0b", b"\x1c", b"\x0d"
HEAD = 4096  # what is kept of an oversized frame: enough for its MSH


def frame(payload: bytes) -> bytes:
    return START + payload + END + CR


@dataclass(frozen=True)
class Frame:
    payload: bytes
    oversized: bool = False  # the frame went past the limit; payload holds its start only


class FrameReader:
    """Reads frames from a stream; ``None`` at end of stream."""

    def __init__(self, reader: asyncio.StreamReader, max_bytes: int) -> None:
        self._reader = reader
        self._max = max_bytes
        self._buffer = bytearray()

    async def next(self) -> Frame | None:
        while True:
            start = self._buffer.find(START)
            if start < 0:
                self._buffer.clear()  # nothing but noise so far
            elif start > 0:
                del self._buffer[:start]
            if self._buffer:
                end = self._buffer.find(END + CR, 1)
                if end >= 0:
                    payload = bytes(
                        self._buffer[1 : min(end, 1 + HEAD) if end > self._max else end]
                    )
                    del self._buffer[: end + 2]
                    return Frame(payload, oversized=end - 1 > self._max)
                if len(self._buffer) > self._max + 2:
                    return await self._skip_oversized()
            chunk = await self._reader.read(65536)
            if not chunk:
                return None
            self._buffer += chunk

    async def _skip_oversized(self) -> Frame:
        """Keep the head (for the ACK's MSH fields), drop the rest of the frame."""
        head = bytes(self._buffer[1 : 1 + HEAD])
        while True:
            end = self._buffer.find(END + CR)
            if end >= 0:
                del self._buffer[: end + 2]
                return Frame(head, oversized=True)
            self._buffer.clear()
            chunk = await self._reader.read(65536)
            if not chunk:
                return Frame(head, oversized=True)
            self._buffer += chunk

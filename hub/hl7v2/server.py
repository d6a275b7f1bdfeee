"""The MLLP listener: concurrent connections up to a cap (more are closed at once, with a log
line), messages of one connection processed in order (the next frame is read only after the
previous one is acknowledged), an idle timeout, optional TLS, and a size limit (over it: AR,
then the connection closes)."""

import asyncio
import contextlib
import logging
import ssl

from hub.base.logs import log_event
from hub.hl7v2.ingest import Ingest
from hub.hl7v2.mllp import FrameReader, frame
from hub.hl7v2.settings import ListenerSettings

log = logging.getLogger(__name__)


class MllpListener:
    def __init__(self, ingest: Ingest, settings: ListenerSettings, host: str, port: int) -> None:
        self.ingest, self.settings, self.host = ingest, settings, host
        self.port = port  # the bound port after start (useful when 0 was asked for)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._stopping = False

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._connection, self.host, self.port, ssl=self._tls(), limit=2**20
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def _tls(self) -> ssl.SSLContext | None:
        if self.settings.tls_cert_file is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.settings.tls_cert_file, self.settings.tls_key_file)
        return context

    async def stop(self, grace_s: float = 5.0) -> None:
        """Take no new connections; let each finish the message in hand, then close."""
        if self._server is None:
            return
        self._stopping = True
        self._server.close()
        if self._connections:
            _, pending = await asyncio.wait(self._connections, timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = (writer.get_extra_info("peername") or ("?",))[0]
        if len(self._connections) >= self.settings.max_connections:
            log_event(
                log,
                "connection_refused",
                logging.WARNING,
                listener=self.settings.name,
                peer=str(peer),
                reason=f"{self.settings.max_connections} connections are open already",
            )
            writer.close()
            return
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        frames = FrameReader(reader, self.settings.max_message_bytes)
        try:
            await self._serve(frames, writer, str(peer))
        except TimeoutError:  # silent too long: its slot goes to another sender
            log_event(log, "idle_closed", listener=self.settings.name, peer=str(peer))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the sender went away: nothing to answer
        except asyncio.CancelledError:
            # ``stop`` cancels the connections still open after the grace time; ending here
            # quietly keeps asyncio's stream callback from logging the cancellation as an error
            if not self._stopping:
                raise
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, frames: FrameReader, writer: asyncio.StreamWriter, peer: str) -> None:
        while True:
            received = await asyncio.wait_for(frames.next(), self.settings.idle_timeout_s)
            if received is None:
                return
            answer = await self.ingest.handle(received.payload, peer, received.oversized)
            if answer.ack is not None:
                writer.write(frame(answer.ack.encode(answer.charset, errors="replace")))
                await writer.drain()
            if answer.close:
                return

"""How an adapter's requests reach the receiver. ``Transport`` is what the delivery engine
needs; ``HttpTransport`` is the usual one: one pooled aiohttp session per adapter, a timeout,
TLS as configured, and a signing hook that sees the final request bytes. A network failure or
a timeout becomes ``TransportError``; every HTTP answer, 5xx included, is a ``Response`` for
the interface to classify. (A front-end database is the other kind: ``front_database.py``.)"""

import asyncio
import ssl
from typing import Protocol

import aiohttp

from adapters.framework.interface import Request, Response
from adapters.signing.common import Signer
from hub.base.errors import RetryableError


class TransportError(RetryableError):
    """The request may or may not have reached the receiver: resend later."""


class Transport(Protocol):
    async def send(self, request: Request) -> Response:
        """The receiver's answer; ``TransportError`` when it may not have received it."""

    async def close(self) -> None: ...


class HttpTransport:
    def __init__(
        self,
        base_url: str,
        timeout_s: float = 30.0,
        tls: ssl.SSLContext | bool = True,
        signer: Signer | None = None,
        connections: int = 16,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._tls = tls
        self._signer = signer
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def send(self, request: Request) -> Response:
        if self._signer is not None:
            # in a thread: an SM2 signature costs 10-20 ms of CPU, too long for the event loop
            headers, body = await asyncio.to_thread(
                self._signer, request.method, request.path, request.headers, request.body
            )
            request = Request(request.method, request.path, headers, body)
        session = self._client()
        try:
            async with session.request(
                request.method,
                f"{self.base_url}{request.path}",
                data=request.body,
                headers=dict(request.headers),
                ssl=self._tls,
            ) as answer:
                body = await answer.read()
                return Response(answer.status, body, dict(answer.headers))
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connections)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

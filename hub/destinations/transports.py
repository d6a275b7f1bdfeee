"""Sending one delivery over a destination's transport, and what came back: accepted (AA/CA,
a 2xx, a confirmed publish), rejected (AE/AR, a 4xx: a person must look) or failed (the
receiver unreachable, a timeout, a 5xx: sent again later)."""

import ssl
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import orjson

from hub.base.envelope import HL7V2_ER7
from hub.base.errors import PublishError
from hub.bus.base import Bus, PlainMessage
from hub.destinations.config import AmqpTransport, Destination, HttpTransport, MllpTransport
from hub.hl7v2.client import ACCEPTED, FAILED, REJECTED, MllpClient

ANSWER_CHARS = 2000  # of a receiver's answer, kept in the ledger


@dataclass(frozen=True)
class Sent:
    outcome: str  # accepted | rejected | failed
    code: str  # AA, AE, AR; an HTTP status; "published"
    answer: str  # as received (bounded), or the transport error
    error: str = ""


class Services(Protocol):
    @property
    def bus(self) -> Bus: ...

    def http_client(self) -> aiohttp.ClientSession: ...

    def mllp_client(
        self,
        host: str,
        port: int,
        charset: str,
        timeout_s: float,
        tls: ssl.SSLContext | None,
        attempts: int,
    ) -> MllpClient: ...


class Transports:
    """The hub's MLLP connection per receiver (one message in flight, as MLLP requires), its
    pooled HTTP client, and the bus for AMQP."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._tls: dict[str, ssl.SSLContext] = {}  # by CA file: one context per way of trusting

    async def send(self, destination: Destination, delivery: str, payload: str) -> Sent:
        """``delivery``: its id in the ledger."""
        transport = destination.transport
        if isinstance(transport, MllpTransport):
            return await self._mllp_send(transport, payload)
        if isinstance(transport, HttpTransport):
            return await self._http_send(transport, payload)
        return await self._amqp_send(transport, delivery, payload)

    async def _mllp_send(self, transport: MllpTransport, text: str) -> Sent:
        tls = None
        if transport.tls:
            tls = self._tls.get(transport.tls_ca_file)
            if tls is None:
                tls = ssl.create_default_context(cafile=transport.tls_ca_file or None)
                self._tls[transport.tls_ca_file] = tls
        client = self.services.mllp_client(
            transport.host,
            transport.port,
            transport.charset,
            transport.timeout_s,
            tls,
            transport.attempts,
        )
        result = await client.send(text)
        answer = (result.ack or result.error)[:ANSWER_CHARS]
        return Sent(result.outcome, result.code, answer, result.error)

    async def _http_send(self, transport: HttpTransport, payload: str) -> Sent:
        """Each resource PUT at its id: the receiver ends up with the hub's current version,
        however often it is sent."""
        base = transport.base_url.rstrip("/")
        headers = {"Content-Type": "application/fhir+json", **transport.headers}
        timeout = aiohttp.ClientTimeout(total=transport.timeout_s)
        answers = []
        for resource in orjson.loads(payload):
            url = f"{base}/{resource['resourceType']}/{resource['id']}"
            try:
                async with self.services.http_client().put(
                    url, data=orjson.dumps(resource), headers=headers, timeout=timeout
                ) as response:
                    body = (await response.read()).decode("utf-8", "replace")[:ANSWER_CHARS]
            except (aiohttp.ClientError, TimeoutError) as exc:
                return Sent(FAILED, "", f"{type(exc).__name__}: {exc}", str(exc) or "timeout")
            answers.append(f"{response.status} {resource['resourceType']}/{resource['id']}")
            if response.status >= 500 or response.status == 429:
                return Sent(FAILED, str(response.status), body, f"HTTP {response.status}")
            if response.status >= 400:
                return Sent(REJECTED, str(response.status), body, _diagnostics(body))
        return Sent(ACCEPTED, "200", "; ".join(answers)[:ANSWER_CHARS])

    async def _amqp_send(self, transport: AmqpTransport, delivery: str, text: str) -> Sent:
        """The message as plain ER7, as the systems publish theirs (docs/amqp.md); the
        delivery's id as ``message_id``, the same on every send."""
        message = PlainMessage(text.encode(), HL7V2_ER7, "", message_id=delivery)
        bus = self.services.bus
        try:
            await bus.publish_plain(transport.exchange, transport.routing_key, message)
        except PublishError as exc:
            return Sent(FAILED, "", str(exc), str(exc))
        return Sent(ACCEPTED, "published", f"{transport.exchange}/{transport.routing_key}")


def _diagnostics(body: str) -> str:
    """What an OperationOutcome says, else the start of the answer."""
    try:
        parsed: Any = orjson.loads(body)
        issues = parsed.get("issue", []) if isinstance(parsed, dict) else []
        return "; ".join(str(i.get("diagnostics", "")) for i in issues) or body[:200]
    except orjson.JSONDecodeError:
        return body[:200]

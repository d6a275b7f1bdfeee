"""The delivery engine over real HTTP against a strict little receiver, with the ledger on
every store backend (MongoDB when a server is reachable): send; transient failure then
success; permanent rejection; duplicate; cancel before re-upload; an outage in which every
submission is delivered exactly once."""

import itertools
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.framework.delivery import Adapter, Courier, RetryPolicy
from adapters.framework.interface import Interface, ReceiverAnswer, Reception, Response
from adapters.framework.transport import HttpTransport, TransportError
from adapters.signing.gateway import TifSigner, tif_signature
from hub.base.json import Json
from store.ledger import ACCEPTED, CANCELLED, DEAD, FAILED, PENDING, REJECTED, Ledger
from tests.integration.test_mllp_tls import self_signed
from tests.stores import BACKENDS, open_backend


class Receiver:
    """Keeps what it accepted per key and refuses a second upload of an accepted key until it
    is cancelled, as the DRG platform does; faults are switched on by the tests."""

    def __init__(self) -> None:
        self.accepted: dict[str, Json] = {}
        self.uploads: list[str] = []
        self.down = False
        self.fail_next = 0
        self.ids = itertools.count(1)

    async def upload(self, request: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=503, text="maintenance")
        if self.fail_next:
            self.fail_next -= 1
            return web.Response(status=502, text="bad gateway")
        body = await request.json()
        key = body.get("key", "")
        if not body.get("diagnosis"):
            return web.json_response({"code": 400, "msg": "diagnosis is required"})
        if key in self.accepted:
            return web.json_response({"code": 409, "msg": "already uploaded: cancel first"})
        self.accepted[key] = body
        self.uploads.append(key)
        return web.json_response({"code": 0, "msg": "ok", "id": f"R{next(self.ids)}"})

    async def cancel(self, request: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=503, text="maintenance")
        body = await request.json()
        if self.accepted.pop(body.get("key", ""), None) is None:
            return web.json_response({"code": 404, "msg": "nothing to cancel"})
        return web.json_response({"code": 0, "msg": "cancelled"})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/upload", self.upload)
        app.router.add_post("/cancel", self.cancel)
        return app


def classify(response: Response) -> ReceiverAnswer:
    if response.status >= 500:
        return ReceiverAnswer(Reception.FAILED, f"HTTP {response.status}")
    body = response.json()
    if body.get("code") == 0:
        return ReceiverAnswer(Reception.ACCEPTED, external_id=body.get("id", ""))
    return ReceiverAnswer(Reception.REJECTED, body.get("msg", ""))


INTERFACES = {
    "upload": Interface(
        "upload",
        "/upload",
        classify,
        cancel="cancel",
        cancel_before_reupload=True,
        cancel_payload=lambda payload, external_id: {"key": payload["key"], "id": external_id},
    ),
    "cancel": Interface("cancel", "/cancel", classify),
}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=BACKENDS)
async def ledger(request: Any, tmp_path: Path) -> AsyncIterator[Ledger]:
    async with open_backend(request.param, tmp_path) as store:  # MongoDB: skipped without one
        yield store.ledger


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    found = Receiver()
    server = TestServer(found.app())
    await server.start_server()
    yield found, str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
async def delivery(
    ledger: Ledger, receiver: tuple[Receiver, str]
) -> AsyncIterator[tuple[Courier, Receiver, Clock]]:
    found, url = receiver
    transport = HttpTransport(url, timeout_s=5)
    clock = Clock()
    engine = Courier(
        ledger,
        {"drg": Adapter("drg", transport, INTERFACES)},
        RetryPolicy(first_delay_s=10, max_delay_s=60, max_attempts=4),
        clock,
    )
    yield engine, found, clock
    await transport.close()


def front_page(key: str, diagnosis: str = "J18.900") -> Json:
    return {"key": key, "diagnosis": diagnosis, "patient": "张伟"}


async def test_send_and_the_same_content_is_not_sent_again(
    delivery: tuple[Courier, Receiver, Clock],
) -> None:
    engine, found, _ = delivery
    first = await engine.submit("drg", "upload", "BA001-1", front_page("BA001-1"))
    assert first.status == ACCEPTED
    assert first.external_id == "R1"
    assert len(first.attempts) == 1
    assert '"diagnosis":"J18.900"' in first.attempts[0].request
    again = await engine.submit("drg", "upload", "BA001-1", front_page("BA001-1"))
    assert again.id == first.id
    assert found.uploads == ["BA001-1"]


async def test_a_transient_failure_is_resent_after_the_backoff(
    delivery: tuple[Courier, Receiver, Clock],
) -> None:
    engine, found, clock = delivery
    found.fail_next = 1
    failed = await engine.submit("drg", "upload", "BA002-1", front_page("BA002-1"))
    assert failed.status == FAILED
    assert failed.next_attempt_at is not None
    wait = failed.next_attempt_at - clock.now
    assert timedelta(seconds=5) <= wait <= timedelta(seconds=10)
    assert await engine.run_due() == 0  # not due yet
    clock.now += wait
    assert await engine.run_due() == 1
    done = await engine.ledger.get(failed.id)
    assert done.status == ACCEPTED
    assert [a.outcome for a in done.attempts] == ["failed", "accepted"]


async def test_a_rejection_waits_for_a_person(delivery: tuple[Courier, Receiver, Clock]) -> None:
    engine, found, clock = delivery
    refused = await engine.submit("drg", "upload", "BA003-1", front_page("BA003-1", ""))
    assert refused.status == REJECTED
    assert refused.error == "diagnosis is required"
    clock.now += timedelta(days=1)
    assert await engine.run_due() == 0  # never resent by itself
    fixed = await engine.submit("drg", "upload", "BA003-1", front_page("BA003-1"))
    assert fixed.status == ACCEPTED
    assert found.uploads == ["BA003-1"]


async def test_changed_content_cancels_then_uploads_again(
    delivery: tuple[Courier, Receiver, Clock],
) -> None:
    engine, found, _ = delivery
    first = await engine.submit("drg", "upload", "BA004-1", front_page("BA004-1"))
    corrected = await engine.submit("drg", "upload", "BA004-1", front_page("BA004-1", "J15.900"))
    assert corrected.status == ACCEPTED
    assert corrected.replaces == first.id
    assert (await engine.ledger.get(first.id)).status == CANCELLED
    cancellation = await engine.ledger.latest("drg", "cancel", "BA004-1", kind="cancel")
    assert cancellation is not None
    assert cancellation.cancels == first.id
    assert cancellation.status == ACCEPTED
    assert '"id":"R1"' in cancellation.payload  # the receiver's id of what it withdraws
    assert found.accepted["BA004-1"]["diagnosis"] == "J15.900"


async def test_the_reupload_waits_while_the_cancellation_fails(
    delivery: tuple[Courier, Receiver, Clock],
) -> None:
    engine, found, clock = delivery
    await engine.submit("drg", "upload", "BA005-1", front_page("BA005-1"))
    found.down = True
    waiting = await engine.submit("drg", "upload", "BA005-1", front_page("BA005-1", "J15.900"))
    assert waiting.status == PENDING  # held back: the first is still accepted there
    clock.now += timedelta(minutes=5)
    await engine.run_due()
    assert (await engine.ledger.get(waiting.id)).status == PENDING
    found.down = False
    clock.now += timedelta(minutes=5)
    await engine.run_due()
    assert (await engine.ledger.get(waiting.id)).status == ACCEPTED
    assert found.accepted["BA005-1"]["diagnosis"] == "J15.900"


async def test_an_outage_delivers_everything_exactly_once(
    delivery: tuple[Courier, Receiver, Clock],
) -> None:
    engine, found, clock = delivery
    found.down = True
    keys = [f"BA1{n:02d}-1" for n in range(12)]
    for key in keys:
        assert (await engine.submit("drg", "upload", key, front_page(key))).status == FAILED
    for _ in range(2):  # still down: each is tried again once its backoff has passed
        clock.now += timedelta(minutes=2)
        await engine.run_due()
    found.down = False
    clock.now += timedelta(minutes=2)
    await engine.run_due()
    assert sorted(found.uploads) == keys  # every one, once
    for key in keys:
        latest = await engine.ledger.latest("drg", "upload", key)
        assert latest is not None
        assert latest.status == ACCEPTED


async def test_too_many_failures_is_dead_until_redriven(
    delivery: tuple[Courier, Receiver, Clock],
) -> None:
    engine, found, clock = delivery
    found.down = True
    submission = await engine.submit("drg", "upload", "BA006-1", front_page("BA006-1"))
    for _ in range(5):
        clock.now += timedelta(hours=1)
        await engine.run_due()
    dead = await engine.ledger.get(submission.id)
    assert dead.status == DEAD
    assert len(dead.attempts) == 4
    found.down = False
    assert await engine.redrive("drg") == 1
    await engine.run_due()
    assert (await engine.ledger.get(submission.id)).status == ACCEPTED


async def test_an_operator_cancels_an_accepted_upload(
    delivery: tuple[Courier, Receiver, Clock],
) -> None:
    engine, found, _ = delivery
    upload = await engine.submit("drg", "upload", "BA007-1", front_page("BA007-1"))
    cancellation = await engine.cancel(upload.id)
    assert cancellation.status == ACCEPTED
    assert (await engine.ledger.get(upload.id)).status == CANCELLED
    assert "BA007-1" not in found.accepted


async def test_the_transport_signs_the_request_it_sends() -> None:
    seen: dict[str, str] = {}

    async def echo(request: web.Request) -> web.Response:
        seen.update(request.headers)
        return web.json_response({"code": 0})

    app = web.Application()
    app.router.add_post("/upload", echo)
    server = TestServer(app)
    await server.start_server()
    signer = TifSigner("paas-1", "token-1", clock=lambda: 1764118800.0, nonce=lambda: "n-1")
    transport = HttpTransport(str(server.make_url("")).rstrip("/"), signer=signer)
    try:
        response = await transport.send(INTERFACES["upload"].request(front_page("BA008-1")))
    finally:
        await transport.close()
        await server.close()
    assert response.status == 200
    assert seen["x-tif-paasid"] == "paas-1"
    assert seen["x-tif-timestamp"] == "1764118800"
    assert seen["x-tif-signature"] == tif_signature("1764118800", "token-1", "n-1")


async def test_the_transport_speaks_tls_and_refuses_an_untrusted_certificate(
    tmp_path: Path,
) -> None:
    cert, key = self_signed(tmp_path)
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)

    async def accept(request: web.Request) -> web.Response:
        return web.json_response({"code": 0})

    app = web.Application()
    app.router.add_post("/upload", accept)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=served)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    trusted = ssl.create_default_context(cafile=str(cert))
    trusted.check_hostname = False  # the test certificate names jianhu.test; we dial 127.0.0.1
    request = INTERFACES["upload"].request(front_page("BA009-1"))
    good = HttpTransport(f"https://127.0.0.1:{port}", tls=trusted)
    strict = HttpTransport(f"https://127.0.0.1:{port}")  # the system's trust store only
    try:
        assert (await good.send(request)).status == 200
        with pytest.raises(TransportError):
            await strict.send(request)
    finally:
        await good.close()
        await strict.close()
        await runner.cleanup()

"""Outbound destinations (``docs/examples/destinations.json``, as shipped) with real sockets: the
hub takes HL7 v2 over its MLLP listener and passes each message to every system whose filter it
meets, over MLLP to receivers written with python-hl7 and as FHIR to an HTTP server. One
receiver is down for a while: every message still arrives once, in order per patient."""

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hl7
import hl7.mllp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from click.testing import CliRunner

from hub.bus.settings import BusSettings
from hub.cli.main import main
from hub.destinations.router import ADAPTER
from hub.web.keys import RUNTIME
from store.archive import ArchiveQuery
from store.ledger import ACCEPTED, PENDING, REJECTED, LedgerQuery
from tests.clock import ManualClock
from tests.integration.fhir_api import settle, start_api

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "destinations.json"
OPS = {"Authorization": "Bearer ops-key"}
RETRY_S = 10.0  # the bus's first retry delay: the test moves the clock, it never waits

ADT = (
    "MSH|^~\\&|HIS|JHYY|JIANHU|JHYY|20261203080000||ADT^{event}^ADT_A01|{control}|P|2.5\r"
    "EVN|{event}|20261203080000\r"
    "PID|1||{pid}^^^JHYY^PI||{name}||19800101|M\r"
    "PV1|1|{cls}|ICU^01^02\r"
)
ORU = (
    "MSH|^~\\&|LIS|JHYY|JIANHU|JHYY|20261203090000||ORU^R01^ORU_R01|{control}|P|2.5\r"
    "PID|1||{pid}^^^JHYY^PI||{name}||19800101|M\r"
    "OBR|1|O-{control}|F-{control}|2345-7^血糖^LN|||20261203083000\r"
    "OBX|1|NM|2345-7^血糖^LN||{value}|mmol/L|3.9-6.1|N|||F\r"
)


def adt(control: str, pid: str, event: str = "A01", cls: str = "I") -> str:
    return ADT.format(control=control, pid=pid, event=event, cls=cls, name=f"患者^{pid}")


def oru(control: str, pid: str, value: str = "5.6") -> str:
    return ORU.format(control=control, pid=pid, value=value, name=f"患者^{pid}")


@dataclass
class Receiver:
    """An MLLP receiver written with python-hl7: AA, or AE for a message that says REFUSE."""

    received: list[str] = field(default_factory=list)
    server: asyncio.Server | None = None

    @property
    def controls(self) -> list[str]:
        return [text.split("\r")[0].split("|")[9] for text in self.received]

    async def handle(
        self, reader: hl7.mllp.HL7StreamReader, writer: hl7.mllp.HL7StreamWriter
    ) -> None:
        try:
            while not writer.is_closing():
                message = await reader.readmessage()
                self.received.append(str(message))
                code = "AE" if "REFUSE" in str(message) else "AA"
                writer.writemessage(message.create_ack(ack_code=code))
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass

    async def start(self, port: int = 0) -> int:
        self.server = await hl7.mllp.start_hl7_server(
            self.handle, "127.0.0.1", port, encoding="utf-8"
        )
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@dataclass
class FhirReceiver:
    """The EMR's FHIR server, as far as the hub needs it: PUT Type/id."""

    puts: list[str] = field(default_factory=list)
    runner: web.AppRunner | None = None

    async def put(self, request: web.Request) -> web.Response:
        body = await request.json()
        assert body["id"] == request.match_info["id"]
        self.puts.append(f"{request.match_info['type']}/{request.match_info['id']}")
        return web.json_response(body)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_put("/fhir/{type}/{id}", self.put)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/fhir"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Site:
    lis: Receiver
    pacs: Receiver
    his: Receiver
    his_port: int
    emr: FhirReceiver
    hub: TestClient  # type: ignore[type-arg]
    clock: ManualClock

    async def send(self, *messages: str) -> None:
        """Over the hub's MLLP listener, one after the other, each answered AA."""
        port = self.hub.app[RUNTIME].listeners[0].port
        reader, writer = await hl7.mllp.open_hl7_connection("127.0.0.1", port, encoding="utf-8")
        try:
            for text in messages:
                writer.writemessage(hl7.parse(text))
                await writer.drain()
                ack = await reader.readmessage()
                assert str(ack.segment("MSA")[1]) == "AA", str(ack)
        finally:
            writer.close()

    async def deliveries(self, destination: str) -> list[Any]:
        query = LedgerQuery(adapter=ADAPTER, interface=destination, limit=100)
        return list(await self.hub.app[RUNTIME].store.ledger.search(query))

    async def retried(self, rounds: int = 6) -> None:
        """Let the bus's retries come due, round after round, each handled to the end."""
        for _ in range(rounds):
            self.clock.advance(RETRY_S * 6)
            await settle(self.hub)


@pytest.fixture(name="site")
async def site_fixture(tmp_path: Path) -> AsyncIterator[Site]:
    lis, pacs, his, emr = Receiver(), Receiver(), Receiver(), FhirReceiver()
    ports = {"lis": await lis.start(), "pacs": await pacs.start(), "his": free_port()}
    emr_url = await emr.start()
    config = tmp_path / "config"
    config.mkdir()
    shipped = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    for destination in shipped:  # the shipped examples, pointed at this test's receivers
        transport = destination["transport"]
        if transport["kind"] == "mllp":
            system = transport["host"].split(".")[0]
            transport |= {"host": "127.0.0.1", "port": ports[system], "attempts": 1}
        else:
            transport["base_url"] = emr_url
    (config / "destinations.json").write_text(json.dumps(shipped), encoding="utf-8")
    clock = ManualClock()
    hub = await start_api(
        tmp_path / "hub",
        consume=True,
        bus_clock=clock,
        config_dir=config,
        mllp_port=0,
        http_host="127.0.0.1",
        bus=BusSettings(retry_delays_s=(RETRY_S, RETRY_S * 6)),
    )
    yield Site(lis, pacs, his, ports["his"], emr, hub, clock)
    await hub.close()
    for receiver in (lis, pacs, his):
        await receiver.stop()
    if emr.runner is not None:
        await emr.runner.cleanup()


async def test_each_system_gets_what_it_takes_and_a_receiver_down_loses_nothing(
    site: Site,
) -> None:
    await site.send(
        adt("C1", "P1"),
        adt("C2", "P2"),
        oru("C3", "P1", "5.1"),
        adt("C4", "P1", event="A08", cls="E"),
        oru("C5", "P1", "5.2"),
        oru("C6", "P2", "6.0"),
        oru("C7", "P1", "5.3"),
    )
    await settle(site.hub)

    # ADT from the HIS: to the LIS and the PACS over MLLP, in the order received
    assert site.lis.controls == ["C1", "C2", "C4"]
    assert site.pacs.controls == ["C1", "C2", "C4"]
    a08_at_pacs = site.pacs.received[2]
    assert "\rPV1|1|O|" in a08_at_pacs  # the PACS's transform: an emergency visit as outpatient
    assert "\rPV1|1|E|" in site.lis.received[2]  # the LIS gets it as sent
    # ... and to the EMR as FHIR: each message's resources PUT at their ids
    assert any(put.startswith("Patient/") for put in site.emr.puts)
    assert any(put.startswith("Observation/") for put in site.emr.puts)

    # the HIS is down: its results wait, recorded, none lost
    assert site.his.received == []
    waiting = await site.deliveries("results-to-his")
    assert len(waiting) == 4
    assert {d.status for d in waiting} <= {"failed", PENDING}

    listed = await (await site.hub.get("/ops/destinations", headers=OPS)).json()
    his = next(d for d in listed if d["name"] == "results-to-his")
    assert "ConnectionRefusedError" in his["last_error"]  # why they wait, for the operator
    assert his["last_error_at"].endswith("+08:00")

    await site.his.start(site.his_port)  # back up
    await site.retried()
    assert sorted(site.his.controls) == ["C3", "C5", "C6", "C7"]  # each once
    of_p1 = [c for c in site.his.controls if c in ("C3", "C5", "C7")]
    assert of_p1 == ["C3", "C5", "C7"]  # in order for the patient
    delivered = await site.deliveries("results-to-his")
    assert {d.status for d in delivered} == {ACCEPTED}
    first = next(d for d in delivered if "C3" in d.payload)
    assert len(first.attempts) >= 2  # failed while the HIS was down, then AA
    assert first.attempts[-1].response.startswith("MSH|")  # the HIS's ACK, kept
    assert "MSA|AA|C3" in first.attempts[-1].response

    # the result's trace goes on to what the hub passed on, and what each receiver answered
    (archived,) = await site.hub.app[RUNTIME].archive.search(ArchiveQuery(control_id="C3"))
    traced = await (await site.hub.get(f"/ops/trace/{archived.id}", headers=OPS)).json()
    assert {(s["interface"], s["status"]) for s in traced["submissions"]} == {
        ("results-to-his", "accepted"),
        ("results-to-emr", "accepted"),
    }


async def test_a_refusal_is_recorded_and_dead_lettered_and_later_messages_go_on(
    site: Site,
) -> None:
    await site.his.start(site.his_port)
    await site.send(oru("REFUSE1", "P9"), oru("C11", "P9"))
    await settle(site.hub)
    assert site.his.controls == ["REFUSE1", "C11"]
    refused, taken = sorted(await site.deliveries("results-to-his"), key=lambda d: d.created_at)
    assert refused.status == REJECTED
    assert "AE" in refused.attempts[-1].response
    assert taken.status == ACCEPTED
    runtime = site.hub.app[RUNTIME]
    (dead,) = await runtime.bus.dead_letters("destination.results-to-his")
    assert "answered AE" in dead.error

    # a person redrives it: sent again (the receiver refuses it again, and says so)
    assert await runtime.bus.redrive("destination.results-to-his") == 1
    await settle(site.hub)
    assert site.his.controls == ["REFUSE1", "C11", "REFUSE1"]


async def test_a_paused_destination_waits_and_goes_on_in_order_when_resumed(
    site: Site,
) -> None:
    await site.his.start(site.his_port)
    paused = await site.hub.post("/ops/destinations/results-to-his/pause", headers=OPS)
    assert (await paused.json())["paused"] is True
    await site.send(oru("C21", "P5"), oru("C22", "P5"))
    await settle(site.hub)
    assert site.his.received == []
    listed = await (await site.hub.get("/ops/destinations", headers=OPS)).json()
    his = next(d for d in listed if d["name"] == "results-to-his")
    assert his["paused"] is True
    assert his["switched_by"] == "api-key:ops"
    assert his["transport"] == f"mllp 127.0.0.1:{site.his_port}"
    shipped = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert [d["name"] for d in listed] == [d["name"] for d in shipped]  # every one, in order

    resumed = await site.hub.post("/ops/destinations/results-to-his/resume", headers=OPS)
    assert (await resumed.json())["paused"] is False
    await site.retried()
    assert site.his.controls == ["C21", "C22"]
    unknown = await site.hub.post("/ops/destinations/nowhere/pause", headers=OPS)
    assert unknown.status == 404
    forbidden = await site.hub.post(
        "/ops/destinations/results-to-his/pause", headers={"Authorization": "Bearer wall-key"}
    )
    assert forbidden.status == 403


async def test_jianhu_destinations_lists_them_and_turns_the_switch(
    site: Site, tmp_path: Path
) -> None:
    env = {"JIANHU_DATA_DIR": str(tmp_path / "hub"), "JIANHU_CONFIG_DIR": str(tmp_path / "config")}
    runner = CliRunner()

    def jianhu(*args: str) -> Any:
        return runner.invoke(main, list(args), env=env)

    paused = await asyncio.to_thread(jianhu, "destinations", "pause", "his-adt-to-lis")
    assert paused.exit_code == 0, paused.output
    assert paused.output.startswith("his-adt-to-lis: paused by cli:")
    listed = await asyncio.to_thread(jianhu, "destinations")
    first = listed.output.splitlines()[0]
    assert first.startswith("his-adt-to-lis  mllp 127.0.0.1:")
    assert "PAUSED by cli:" in first
    rows = json.loads((await asyncio.to_thread(jianhu, "destinations", "--json")).output)
    assert [row["name"] for row in rows][:2] == ["his-adt-to-lis", "orders-to-lis"]
    unknown = await asyncio.to_thread(jianhu, "destinations", "resume", "nowhere")
    assert unknown.exit_code == 1
    assert "no destination 'nowhere'" in unknown.output

    # the hub sees the switch the CLI turned: the LIS gets nothing until it is resumed
    await site.send(adt("C31", "P7"))
    await settle(site.hub)
    assert site.lis.received == []
    assert site.pacs.controls == ["C31"]
    resumed = await asyncio.to_thread(jianhu, "destinations", "resume", "his-adt-to-lis")
    assert resumed.exit_code == 0, resumed.output
    await site.retried()
    assert site.lis.controls == ["C31"]


async def test_a_fhir_search_filter_passes_only_the_messages_whose_resources_match(
    tmp_path: Path,
) -> None:
    """``"fhir": "Observation?code=..."``: the infection-control desk gets glucose results only,
    judged on the Observations each message produced."""
    desk = Receiver()
    port = await desk.start()
    config = tmp_path / "config"
    config.mkdir()
    only_glucose = {
        "name": "glucose-to-desk",
        "transport": {"kind": "mllp", "host": "127.0.0.1", "port": port, "attempts": 1},
        "filter": {"message_types": ["ORU"], "fhir": "Observation?code=http://loinc.org|2345-7"},
    }
    (config / "destinations.json").write_text(json.dumps([only_glucose]), encoding="utf-8")
    hub = await start_api(tmp_path / "hub", consume=True, config_dir=config, mllp_port=0)
    site = Site(desk, desk, desk, 0, FhirReceiver(), hub, ManualClock())
    try:
        haemoglobin = oru("G2", "P1").replace("2345-7^血糖^LN", "718-7^血红蛋白^LN")
        await site.send(oru("G1", "P1"), haemoglobin, oru("G3", "P2"))
        await settle(hub)
        assert desk.controls == ["G1", "G3"]
    finally:
        await hub.close()
        await desk.stop()

"""An MLLP destination over TLS: the hub checks the receiver's certificate against the CA file
the destination names, and a receiver whose certificate it cannot trust gets nothing."""

import json
import ssl
from pathlib import Path

import hl7.mllp

from hub.destinations.router import ADAPTER
from hub.web.keys import RUNTIME
from store.ledger import ACCEPTED, LedgerQuery
from tests.clock import ManualClock
from tests.integration.fhir_api import settle, start_api
from tests.integration.test_destinations import FhirReceiver, Receiver, Site, adt
from tests.integration.test_mllp_tls import self_signed


async def test_a_tls_destination_trusts_only_the_named_ca(tmp_path: Path) -> None:
    lis_cert, lis_key = self_signed(tmp_path, "lis")
    other_cert, _ = self_signed(tmp_path, "other")
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(lis_cert, lis_key)
    lis = Receiver()
    lis.server = await hl7.mllp.start_hl7_server(
        lis.handle, "127.0.0.1", 0, encoding="utf-8", ssl=served
    )
    port = lis.server.sockets[0].getsockname()[1]
    mllp = {"kind": "mllp", "host": "127.0.0.1", "port": port, "tls": True, "attempts": 1}
    destinations = [
        {"name": "lis-tls", "transport": mllp | {"tls_ca_file": str(lis_cert)}},
        {"name": "lis-untrusted", "transport": mllp | {"tls_ca_file": str(other_cert)}},
    ]
    for destination in destinations:
        destination["filter"] = {"message_types": ["ADT"]}
    config = tmp_path / "config"
    config.mkdir()
    (config / "destinations.json").write_text(json.dumps(destinations), encoding="utf-8")
    hub = await start_api(tmp_path / "hub", consume=True, config_dir=config, mllp_port=0)
    try:
        site = Site(lis, lis, lis, 0, FhirReceiver(), hub, ManualClock())
        await site.send(adt("T1", "P1"))
        await settle(hub)
        assert lis.controls == ["T1"]  # once: through the trusted destination only
        ledger = hub.app[RUNTIME].store.ledger
        (trusted,) = await ledger.search(LedgerQuery(adapter=ADAPTER, interface="lis-tls"))
        assert trusted.status == ACCEPTED
        (refused,) = await ledger.search(LedgerQuery(adapter=ADAPTER, interface="lis-untrusted"))
        assert refused.status == "failed"
        assert "CERTIFICATE_VERIFY_FAILED" in refused.attempts[-1].response
    finally:
        await hub.close()
        await lis.stop()

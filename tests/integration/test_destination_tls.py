"""An MLLP destination over TLS: the hub checks the receiver's certificate against the CA file
the destination names, and a receiver whose certificate it cannot trust gets nothing."""

import datetime
import ipaddress
import json
import ssl
from pathlib import Path

import hl7.mllp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hub.destinations.router import ADAPTER
from hub.web.keys import RUNTIME
from store.ledger import ACCEPTED, LedgerQuery
from tests.clock import ManualClock
from tests.integration.fhir_api import settle, start_api
from tests.integration.test_destinations import FhirReceiver, Receiver, Site, adt


def certificate(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, as a LIS's own CA would issue one."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / f"{name}.pem", folder / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def test_a_tls_destination_trusts_only_the_named_ca(tmp_path: Path) -> None:
    lis_cert, lis_key = certificate(tmp_path, "lis")
    other_cert, _ = certificate(tmp_path, "other")
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

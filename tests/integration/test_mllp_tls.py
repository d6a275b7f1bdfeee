"""An MLLP listener with TLS: the sender connects over TLS and gets its ACK; a plain-text
connection to the same port gets nothing."""

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hub.hl7v2.message import Message
from hub.hl7v2.mllp import frame
from hub.hl7v2.settings import Hl7Settings, ListenerSettings
from hub.runtime import Runtime
from hub.settings import load_settings

ORU = (Path(__file__).parents[1] / "data" / "hl7" / "19-lis-oru-r01-cbc-corrected.hl7").read_bytes()


def self_signed(folder: Path, name: str = "jianhu") -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA, as a LIS's private one would be),
    written to ``name``.pem and ``name``.key."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name}.test")])
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


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Runtime]:
    cert, key = self_signed(tmp_path)
    listener = ListenerSettings(tls_cert_file=cert, tls_key_file=key)
    runtime = Runtime(
        load_settings(
            data_dir=tmp_path,
            mllp_port=0,
            http_host="127.0.0.1",
            hl7=Hl7Settings(listeners=(listener,)),
        )
    )
    await runtime.start(consume=False)
    yield runtime
    await runtime.stop()


async def test_tls_senders_get_their_ack(hub: Runtime) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the test's certificate is self-signed
    port = hub.listeners[0].port
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    writer.write(frame(ORU))
    data = await asyncio.wait_for(reader.readuntil(b"\x1c\r"), 10)
    writer.close()
    msa = Message(data[1:-2].decode()).first("MSA")
    assert msa is not None
    assert msa.value(1) == "AA"

    plain_reader, plain_writer = await asyncio.open_connection("127.0.0.1", port)
    plain_writer.write(frame(ORU))
    with pytest.raises((asyncio.IncompleteReadError, ConnectionError, TimeoutError)):
        await asyncio.wait_for(plain_reader.readuntil(b"\x1c\r"), 5)
    plain_writer.close()

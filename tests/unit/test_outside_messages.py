"""A system's plain message as the bus wraps it, what the intake reads back, an ACK's outcome,
and which keys a configured sender may use."""

from hub.bus.outside import OUTSIDE, outside, wrap
from hub.hl7v2.ack import ack_outcome
from hub.intake.settings import AmqpIntakeSettings, AmqpSender
from tests.unit.test_envelope import make


def test_a_wrapped_message_keeps_what_its_publisher_said() -> None:
    envelope = wrap(
        b"MSH|^~\\&|LIS",
        "hl7v2",
        content_type="x-application/hl7-v2+er7; charset=gb18030",
        message_id="m-1",
        app_id="LIS",
        user_id="lis",
        reply_to="amq.gen-1",
        correlation_id="ask-1",
    )
    assert (envelope.type, envelope.source, envelope.body) == ("hl7v2", "LIS", b"MSH|^~\\&|LIS")
    assert envelope.content_type == "x-application/hl7-v2+er7"  # the media type, known
    assert envelope.correlation_id is None  # the hub's trace id is chosen by the intake
    said = outside(envelope)
    assert said is not None
    assert (said.message_id, said.app_id, said.user_id) == ("m-1", "LIS", "lis")
    assert (said.reply_to, said.correlation_id) == ("amq.gen-1", "ask-1")
    assert said.content_type == "x-application/hl7-v2+er7; charset=gb18030"


def test_an_unknown_content_type_is_kept_as_bytes_and_missing_properties_are_empty() -> None:
    envelope = wrap(
        b"\x00\x01",
        "fhir.Patient",
        content_type="text/xml",
        message_id=None,
        app_id=None,
        user_id=None,
        reply_to=None,
        correlation_id=None,
    )
    assert envelope.content_type == "application/octet-stream"
    said = outside(envelope)
    assert said is not None
    assert (said.app_id, said.user_id, said.message_id, said.content_type) == (
        "",
        "",
        "",
        "text/xml",
    )
    assert dict(envelope.headers).keys() == {OUTSIDE, "amqp-content-type"}


def test_the_hubs_own_envelope_is_not_a_systems_message() -> None:
    assert outside(make()) is None


def test_an_acks_code_and_text() -> None:
    ack = (
        "MSH|^~\\&|JIANHU||LIS||20261203||ACK^R01^ACK|1|P|2.5\rMSA|AE|C1|PID-3 is empty\rERR|||101"
    )
    assert ack_outcome(ack) == ("AE", "PID-3 is empty")
    assert ack_outcome(ack.replace("\r", "\n")) == ("AE", "PID-3 is empty")
    assert ack_outcome("MSH#^~\\&#X\rMSA#AA#C2") == ("AA", "")
    assert ack_outcome("") == ("", "")
    assert ack_outcome("MSH|^~\\&|X") == ("", "")


def test_a_sender_uses_only_the_keys_it_accepts_and_its_own_applications() -> None:
    lis = AmqpSender(accepts=("hl7v2",))
    assert lis.accepts_key("hl7v2")
    assert not lis.accepts_key("fhir.Patient")
    assert AmqpSender().accepts_key("fhir.Bundle")
    assert not AmqpSender().accepts_key("fhir.Patient.extra")
    settings = AmqpIntakeSettings()
    assert settings.listener_for("LIS", lis).allowed_senders == ("LIS",)
    mindray = AmqpSender(hl7_applications=("LIS", "MINDRAY^JHYY"))
    assert settings.listener_for("LIS", mindray).allowed_senders == ("LIS", "MINDRAY^JHYY")

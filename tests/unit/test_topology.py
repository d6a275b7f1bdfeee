import pytest

from hub.base.errors import PermanentError, RetryableError
from hub.bus.outcome import Verdict, decide
from hub.bus.topology import requeue_binding, requeue_key, retry_tier, topic_matches


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("hl7v2.ORU.*", "hl7v2.ORU.R01", True),
        ("hl7v2.ORU.*", "hl7v2.ORU.R01.extra", False),
        ("hl7v2.#", "hl7v2", True),
        ("hl7v2.#", "hl7v2.ADT.A01", True),
        ("#.created", "fhir.Patient.created", True),
        ("fhir.*.created", "fhir.Patient.updated", False),
        ("*.lab.queue", "5000ms.lab.queue", True),
        ("#", "anything.at.all", True),
    ],
)
def test_topic_matching_follows_amqp(pattern: str, key: str, expected: bool) -> None:
    assert topic_matches(pattern, key) is expected


def test_a_retry_key_reaches_only_its_own_queue() -> None:
    key = requeue_key(retry_tier(5.0), "normalizer.hl7v2")
    assert key == "5000ms.normalizer.hl7v2"
    assert topic_matches(requeue_binding("normalizer.hl7v2"), key)
    assert not topic_matches(requeue_binding("normalizer"), key)
    assert not topic_matches(requeue_binding("lab.tat"), key)


def test_retry_delays_grow_then_the_message_dies() -> None:
    delays = (5.0, 30.0, 300.0)
    verdicts = [decide(RetryableError("busy"), attempt, delays) for attempt in (1, 2, 3, 4)]
    assert [v.verdict for v in verdicts] == [Verdict.RETRY] * 3 + [Verdict.DEAD]
    assert [v.delay_s for v in verdicts[:3]] == [5.0, 30.0, 300.0]


def test_permanent_errors_die_at_once_with_a_masked_message() -> None:
    outcome = decide(PermanentError("bad ID 330602199001011234"), 1, (5.0,))
    assert outcome.verdict is Verdict.DEAD
    assert outcome.error == "bad ID 330602********1234"
    assert outcome.error_class == "hub.base.errors.PermanentError"

"""What the AMQP intake says back about one message: the reply for the sender (when it asked for
one with ``reply_to``) and, for a message the hub would not take, the reason it is dead-lettered
with. Replies are the ACK of an HL7 v2 message, else FHIR JSON: the interaction's response or an
OperationOutcome."""

from dataclasses import dataclass

import orjson

from fhir_profiles.issues import Issue
from hub.base.envelope import FHIR_JSON
from hub.base.errors import PermanentError
from hub.fhir.outcome import outcome

# reply headers
H_ARCHIVE_ID = "x-jianhu-archive-id"  # the hub's correlation id: what ``jianhu trace`` takes
H_OUTCOME = "x-jianhu-outcome"  # accepted | refused
H_STATUS = "x-jianhu-status"  # the HTTP status the same FHIR request would have had
ACCEPTED, REFUSED = "accepted", "refused"


class IntakeRefusedError(PermanentError):
    """The message is not taken: it goes to the intake's dead letters with this reason."""


@dataclass(frozen=True)
class Answer:
    body: bytes
    content_type: str
    headers: dict[str, str]
    refusal: str = ""  # empty: taken; else why not (the dead letter's reason)


def fhir_answer(status: int, body: bytes, archive_id: str = "", refusal: str = "") -> Answer:
    headers = {H_STATUS: str(status), H_OUTCOME: REFUSED if refusal else ACCEPTED}
    if archive_id:
        headers[H_ARCHIVE_ID] = archive_id
    return Answer(body, FHIR_JSON, headers, refusal)


def refused(status: int, code: str, text: str, archive_id: str = "") -> Answer:
    """An OperationOutcome for a message refused before any FHIR interaction ran."""
    body = orjson.dumps(outcome(Issue("error", code, text)))
    return fhir_answer(status, body, archive_id, refusal=text)

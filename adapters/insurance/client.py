"""One insurance platform's synchronous transactions: the HIS waits at the counter, so a call
goes straight to the platform with a tight timeout, never through a queue. Every call is
recorded in the ledger (kind ``call``, business key its ``msgid``) before it is sent: when the
answer is lost, the record is what a reversal (2601) or a query names.

A call's record ends accepted (infcode 0), rejected (the platform said no, with its reason) or
failed with "outcome unknown" (no answer, a 5xx, an answer that is not the envelope): an unknown
outcome of a money transaction must be resolved, never assumed."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import orjson
from pydantic import BaseModel, Field, SecretStr

from adapters.framework.delivery import content_hash
from adapters.framework.interface import Request
from adapters.framework.transport import HttpTransport, TransportError
from adapters.insurance.envelope import (
    Answer,
    Institution,
    Json,
    MessageIds,
    Operator,
    UnreadableAnswerError,
    envelope,
    read_answer,
)
from adapters.insurance.signin import SignInKeeper, SignInRefusedError
from adapters.signing.gateway import TifSigner
from hub.base.envelope import new_id
from hub.base.errors import JianhuError
from store.ledger import ACCEPTED, FAILED, REJECTED, SENDING, Attempt, Ledger, Submission

ADAPTER = "insurance"
UNKNOWN = "outcome unknown"


class InsurancePlatform(BaseModel):
    """Where one platform is and who the hospital is there (the local bureau announces it)."""

    base_url: str
    path: str = "/fsi/api/callService"  # one URL for all, the infno in the body
    paths: dict[str, str] = Field(default_factory=dict)  # infno -> its own URL, where it has one
    institution: Institution
    timeout_s: float = 15.0  # someone is waiting at the counter
    signature: Literal["none", "tif"] = "none"
    tif_paas_id: str = ""
    tif_token: SecretStr = SecretStr("")
    sign_in_operator: str = "jianhu"  # opter_no of the 9001 sign-in
    sign_in_ip: str = "127.0.0.1"

    def path_of(self, infno: str) -> str:
        return self.paths.get(infno, self.path)


class OutcomeUnknownError(JianhuError):
    """The platform may or may not have done it: resolve by a query or a reversal (2601)."""

    def __init__(self, message: str, msgid: str, call_id: str) -> None:
        super().__init__(message)
        self.msgid, self.call_id = msgid, call_id
        # what the gateway made of it: "reversed" (2601 accepted: nothing stands, settle
        # again), "not done" (the platform has no such transaction), or "" (still unknown)
        self.resolution = ""
        self.reversal_call_id = ""


@dataclass(frozen=True)
class CallResult:
    answer: Answer
    msgid: str
    call_id: str  # the ledger record


class InsuranceClient:
    def __init__(
        self,
        name: str,
        platform: InsurancePlatform,
        ledger: Ledger,
        transport: HttpTransport | None = None,
        ids: MessageIds | None = None,
    ) -> None:
        """``ids``: shared by every client of one institution (the msgid rule is per
        institution, whichever platform a call goes to)."""
        self.name, self.platform, self._ledger = name, platform, ledger
        signer = None
        if platform.signature == "tif":
            signer = TifSigner(platform.tif_paas_id, platform.tif_token.get_secret_value())
        self._transport = transport or HttpTransport(
            platform.base_url, timeout_s=platform.timeout_s, signer=signer
        )
        self._ids = ids or MessageIds(platform.institution.fixmedins_code)
        operator = Operator(opter=platform.sign_in_operator, opter_name=platform.sign_in_operator)
        self._signer_operator = operator
        self.sign_in = SignInKeeper(
            self._sign_in_call, platform.sign_in_operator, platform.sign_in_ip
        )

    async def call(
        self, infno: str, input_: Json, operator: Operator, insuplc_admdvs: str = ""
    ) -> CallResult:
        """Send one transaction with today's sign number; a refusal that says the number
        expired signs in again and sends once more (with a new msgid)."""
        sign_no = await self._signed_in()
        result = await self._send(infno, input_, operator, sign_no, insuplc_admdvs)
        if await self.sign_in.renew_if_expired(result.answer, sign_no):
            sign_no = await self._signed_in()
            result = await self._send(infno, input_, operator, sign_no, insuplc_admdvs)
        return result

    async def close(self) -> None:
        await self._transport.close()

    async def _signed_in(self) -> str:
        """Today's sign number; a sign-in without an answer means the transaction was not
        sent at all, which is a refusal to the caller, not an unknown outcome of it."""
        try:
            return await self.sign_in.number()
        except OutcomeUnknownError as exc:
            raise SignInRefusedError(f"9001 sign-in got no answer: {exc}") from exc

    async def _sign_in_call(self, infno: str, input_: Json) -> Answer:
        return (await self._send(infno, input_, self._signer_operator, "", "")).answer

    async def _send(
        self, infno: str, input_: Json, operator: Operator, sign_no: str, insuplc: str
    ) -> CallResult:
        msgid = self._ids.new()
        body = envelope(infno, input_, msgid, self.platform.institution, operator, sign_no, insuplc)
        raw = orjson.dumps(body)
        started = datetime.now(UTC)
        record = Submission(
            id=new_id(),
            adapter=ADAPTER,
            interface=f"{self.name}/{infno}",
            business_key=msgid,
            kind="call",
            payload=raw.decode(),
            content_hash=content_hash(body),
            status=SENDING,
            created_at=started,
            updated_at=started,
        )
        await self._ledger.add(record)  # before it is sent: a lost answer names this msgid
        request = Request(
            "POST", self.platform.path_of(infno), {"Content-Type": "application/json"}, raw
        )
        try:
            response = await self._transport.send(request)
            if response.status >= 400:
                raise UnreadableAnswerError(f"HTTP {response.status}")
            answer = read_answer(orjson.loads(response.body))
        except (TransportError, UnreadableAnswerError, orjson.JSONDecodeError) as exc:
            await self._finish(record, raw, str(exc), FAILED, f"{UNKNOWN}: {exc}", started)
            raise OutcomeUnknownError(
                f"{infno} {msgid}: {UNKNOWN} ({exc})", msgid, record.id
            ) from exc
        status = ACCEPTED if answer.succeeded else REJECTED
        received = response.body.decode(errors="replace")
        await self._finish(
            record, raw, received, status, answer.error, started, answer.platform_msgid
        )
        return CallResult(answer, msgid, record.id)

    async def _finish(
        self,
        record: Submission,
        sent: bytes,
        received: str,
        status: str,
        error: str,
        started: datetime,
        platform_msgid: str = "",
    ) -> None:
        outcome = status if status != SENDING else FAILED
        attempt = Attempt(1, started, datetime.now(UTC), outcome, sent.decode(), received, error)
        # no next attempt: a synchronous call is never resent by the ledger
        await self._ledger.finish(record.id, attempt, status, None, platform_msgid)

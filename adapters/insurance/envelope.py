"""The national medical-insurance (FSI) message envelope (nhsa.md §2-3): every transaction is
``{infno, msgid, mdtrtarea_admvs, insuplc_admdvs, recer_sys_code, infver, opter_type, opter,
opter_name, inf_time, fixmedins_code, fixmedins_name, sign_no, input}`` and every answer
``{infcode, inf_refmsgid, err_msg, warn_msg, output}``.

``msgid`` is the institution code (12) + ``yyyyMMddHHmmss`` + a 4-digit sequence, unique per
institution within a second; it is kept with the call, since a reversal (2601) and the
reconciliation (3202) name the call by it."""

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from hub.base.errors import JianhuError, RetryableError
from hub.base.hospital_time import HOSPITAL

Json = dict[str, Any]
SEQUENCE_PER_SECOND = 10_000


class Institution(BaseModel, frozen=True):
    """Who the hospital is on an insurance platform; values the local bureau announces."""

    fixmedins_code: str = Field(min_length=1, max_length=30)  # 定点医药机构编号, e.g. H33060200001
    fixmedins_name: str = Field(min_length=1, max_length=200)
    mdtrtarea_admvs: str = Field(pattern=r"^\d{6}$")  # 就医地医保区划 (the hospital's)
    recer_sys_code: str = "YBXT"  # 接收方系统代码: YBXT, LXXT for 离休 (insutype 340), GSXT
    infver: str = "V1.0"


class Operator(BaseModel, frozen=True):
    """经办人: a person at a counter (1), a kiosk (2) or a mobile terminal (3)."""

    opter_type: str = Field(default="1", pattern=r"^[123]$")
    opter: str = Field(min_length=1, max_length=30)
    opter_name: str = Field(min_length=1, max_length=50)


class MessageIdsSpentError(RetryableError):
    """This second's 10,000 ids are given out: try again in the next second."""


class MessageIds:
    """``msgid`` by the national rule. At most 10,000 ids a second: the 10,001st is refused
    rather than repeat one (a repeated msgid would make a reversal ambiguous)."""

    def __init__(
        self, fixmedins_code: str, clock: Callable[[], datetime] = lambda: datetime.now(HOSPITAL)
    ) -> None:
        self._code, self._clock = fixmedins_code, clock
        self._lock = threading.Lock()
        self._second, self._next = "", 0

    def new(self) -> str:
        with self._lock:
            second = self._clock().astimezone(HOSPITAL).strftime("%Y%m%d%H%M%S")
            if second != self._second:
                self._second, self._next = second, 0
            if self._next >= SEQUENCE_PER_SECOND:
                raise MessageIdsSpentError(f"10,000 msgids given out in {second}")
            number, self._next = self._next, self._next + 1
            return f"{self._code}{second}{number:04d}"


def envelope(
    infno: str,
    input_: Json,
    msgid: str,
    institution: Institution,
    operator: Operator,
    sign_no: str = "",
    insuplc_admdvs: str = "",
    now: datetime | None = None,
) -> Json:
    """The request body of one transaction. ``insuplc_admdvs`` (参保地, from 1101) is required
    whenever the input names a person (``psn_no``)."""
    moment = (now or datetime.now(HOSPITAL)).astimezone(HOSPITAL)
    return {
        "infno": infno,
        "msgid": msgid,
        "mdtrtarea_admvs": institution.mdtrtarea_admvs,
        "insuplc_admdvs": insuplc_admdvs,
        "recer_sys_code": institution.recer_sys_code,
        "dev_no": "",
        "dev_safe_info": "",
        "cainfo": "",
        "signtype": "",
        "infver": institution.infver,
        "opter_type": operator.opter_type,
        "opter": operator.opter,
        "opter_name": operator.opter_name,
        "inf_time": moment.strftime("%Y-%m-%d %H:%M:%S"),
        "fixmedins_code": institution.fixmedins_code,
        "fixmedins_name": institution.fixmedins_name,
        "sign_no": sign_no,
        "input": input_,
    }


class UnreadableAnswerError(JianhuError):
    """The platform's answer is not its envelope: the outcome of the call is unknown."""


@dataclass(frozen=True)
class Answer:
    succeeded: bool
    output: Json
    error: str = ""  # err_msg when it failed
    warning: str = ""  # warn_msg: a success with a warning is still a success
    platform_msgid: str = ""  # inf_refmsgid
    body: Json | None = None  # the answer as the platform sent it


def read_answer(body: Any) -> Answer:
    """``infcode`` 0 (a number or the text "0") succeeded, -1 (or any other) failed with
    ``err_msg``; anything that is not the envelope raises ``UnreadableAnswerError``."""
    if not isinstance(body, dict) or "infcode" not in body:
        raise UnreadableAnswerError("the answer has no infcode")
    try:
        code = int(str(body["infcode"]).strip())
    except ValueError as exc:
        raise UnreadableAnswerError(f"infcode {str(body['infcode'])[:20]!r}") from exc
    output = body.get("output") if isinstance(body.get("output"), dict) else {}
    return Answer(
        succeeded=code == 0,
        output=output or {},
        error="" if code == 0 else str(body.get("err_msg") or f"infcode {code}"),
        warning=str(body.get("warn_msg") or ""),
        platform_msgid=str(body.get("inf_refmsgid") or ""),
        body=body,
    )

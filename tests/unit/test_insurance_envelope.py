"""The national insurance envelope: msgid by its rule, the request fields, the answer read by
infcode, and the day's sign number kept and renewed."""

import asyncio
from datetime import datetime, timedelta

import pytest

from adapters.insurance.envelope import (
    Answer,
    Institution,
    Json,
    MessageIds,
    MessageIdsSpentError,
    Operator,
    UnreadableAnswerError,
    envelope,
    read_answer,
)
from adapters.insurance.signin import SignInKeeper, SignInRefusedError
from hub.base.hospital_time import HOSPITAL

HOSPITAL_CODE = "H33060200001"
INSTITUTION = Institution(
    fixmedins_code=HOSPITAL_CODE, fixmedins_name="绍兴市某人民医院", mdtrtarea_admvs="330602"
)
COUNTER = Operator(opter="0101", opter_name="收费员甲")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 9, 30, 5, tzinfo=HOSPITAL)

    def __call__(self) -> datetime:
        return self.now


def test_a_msgid_is_the_institution_the_second_and_a_sequence() -> None:
    clock = Clock()
    ids = MessageIds(HOSPITAL_CODE, clock)
    first, second = ids.new(), ids.new()
    assert first == "H33060200001202612040930050000"
    assert second == "H33060200001202612040930050001"
    assert len(first) == 30
    clock.now += timedelta(seconds=1)
    assert ids.new().endswith("202612040930060000")  # a new second starts again at 0000


def test_no_msgid_is_given_twice_in_a_second() -> None:
    ids = MessageIds(HOSPITAL_CODE, Clock())
    given = {ids.new() for _ in range(10_000)}
    assert len(given) == 10_000
    with pytest.raises(MessageIdsSpentError):
        ids.new()


def test_the_envelope_carries_who_when_and_the_sign_number() -> None:
    when = datetime(2026, 12, 4, 1, 2, 3, tzinfo=HOSPITAL)
    body = envelope(
        "2201", {"mdtrtinfo": {"psn_no": "P1"}}, "M1", INSTITUTION, COUNTER, "S9", "330100", when
    )
    assert body["infno"] == "2201"
    assert (body["mdtrtarea_admvs"], body["insuplc_admdvs"]) == ("330602", "330100")
    assert (body["recer_sys_code"], body["infver"]) == ("YBXT", "V1.0")
    assert (body["opter_type"], body["opter"], body["opter_name"]) == ("1", "0101", "收费员甲")
    assert body["inf_time"] == "2026-12-04 01:02:03"
    assert (body["fixmedins_code"], body["sign_no"]) == (HOSPITAL_CODE, "S9")
    assert body["input"] == {"mdtrtinfo": {"psn_no": "P1"}}


@pytest.mark.parametrize(
    ("body", "succeeded", "error", "warning"),
    [
        ({"infcode": 0, "output": {"a": 1}}, True, "", ""),
        ({"infcode": "0", "output": {}, "warn_msg": "余额不足提醒"}, True, "", "余额不足提醒"),
        ({"infcode": -1, "err_msg": "人员未参保"}, False, "人员未参保", ""),
        ({"infcode": "-1"}, False, "infcode -1", ""),
    ],
)
def test_an_answer_is_read_by_its_infcode(
    body: Json, succeeded: bool, error: str, warning: str
) -> None:
    answer = read_answer(body)
    assert (answer.succeeded, answer.error, answer.warning) == (succeeded, error, warning)


@pytest.mark.parametrize("body", [None, [], {"output": {}}, {"infcode": "成功"}])
def test_an_answer_that_is_not_the_envelope_is_unreadable(body: object) -> None:
    with pytest.raises(UnreadableAnswerError):
        read_answer(body)


class Platform:
    def __init__(self) -> None:
        self.sign_ins = 0
        self.refuse = False

    async def call(self, infno: str, input_: Json) -> Answer:
        assert infno == "9001"
        assert input_ == {"signIn": {"opter_no": "0101", "mac": "", "ip": "10.0.0.8"}}
        await asyncio.sleep(0)  # another caller may come in meanwhile
        if self.refuse:
            return Answer(False, {}, error="操作员未授权")
        self.sign_ins += 1
        return Answer(True, {"signinoutb": {"sign_no": f"S{self.sign_ins}"}})


async def test_the_days_sign_number_is_kept_and_renewed() -> None:
    platform, clock = Platform(), Clock()
    keeper = SignInKeeper(platform.call, "0101", "10.0.0.8", clock=clock)
    numbers = await asyncio.gather(*(keeper.number() for _ in range(5)))
    assert set(numbers) == {"S1"}  # one sign-in for every caller
    assert platform.sign_ins == 1
    expired = Answer(False, {}, error="签到流水号无效")
    assert await keeper.renew_if_expired(expired, "S1")
    assert await keeper.number() == "S2"
    assert not await keeper.renew_if_expired(Answer(False, {}, error="人员未参保"), "S2")
    clock.now += timedelta(days=1)  # a new day: a new sign-in
    assert await keeper.number() == "S3"


async def test_a_refused_sign_in_says_why() -> None:
    platform = Platform()
    platform.refuse = True
    keeper = SignInKeeper(platform.call, "0101", "10.0.0.8")
    with pytest.raises(SignInRefusedError, match="操作员未授权"):
        await keeper.number()

"""Sign-in (9001 签到): the platform gives a ``sign_no`` that every later transaction of the day
carries. The keeper signs in once, keeps the number, and signs in again on a new day or when the
platform says the number is no longer valid; concurrent callers share one sign-in."""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime

from adapters.insurance.envelope import Answer, Json
from hub.base.errors import JianhuError
from hub.base.hospital_time import HOSPITAL

SIGN_IN = "9001"
# the platform's words for a sign number it no longer takes (configurable per platform)
EXPIRED_WORDS = ("签到", "sign_no", "signno")


class SignInRefusedError(JianhuError):
    """The platform refused the sign-in: nothing can be sent until it is fixed."""


@dataclass
class SignIn:
    number: str
    day: date


class SignInKeeper:
    def __init__(
        self,
        call: Callable[[str, Json], Awaitable[Answer]],
        opter_no: str,
        ip: str,
        mac: str = "",
        clock: Callable[[], datetime] = lambda: datetime.now(HOSPITAL),
    ) -> None:
        """``call(infno, input)`` sends one transaction without a sign number."""
        self._call, self._clock = call, clock
        self._input: Json = {"signIn": {"opter_no": opter_no, "mac": mac, "ip": ip}}
        self._current: SignIn | None = None
        self._lock = asyncio.Lock()

    async def number(self) -> str:
        """Today's sign number, signing in first when there is none for today."""
        today = self._clock().astimezone(HOSPITAL).date()
        async with self._lock:
            if self._current is None or self._current.day != today:
                self._current = SignIn(await self._sign_in(), today)
            return self._current.number

    async def renew_if_expired(self, answer: Answer, used: str) -> bool:
        """After a refusal that names the sign number: forget it (once for all callers), so
        the next ``number()`` signs in again. True when the caller should send again."""
        if answer.succeeded or not any(w in answer.error for w in EXPIRED_WORDS):
            return False
        async with self._lock:
            if self._current is not None and self._current.number == used:
                self._current = None
        return True

    async def _sign_in(self) -> str:
        answer = await self._call(SIGN_IN, self._input)
        if not answer.succeeded:
            raise SignInRefusedError(f"9001 sign-in refused: {answer.error}")
        found = answer.output.get("signinoutb") or {}
        number = str(found.get("sign_no") or "") if isinstance(found, dict) else ""
        if not number:
            raise SignInRefusedError("9001 answered without a sign_no")
        return number

"""Pausing and resuming a destination: an operator's switch, shared by every hub process and
kept with who set it and when. It is recorded as a run of the job ``destination:<name>`` in the
store's job history (outcome ``paused`` or ``resumed``, the operator as its holder): the latest
says where the switch stands. Each process looks at most once a second per destination."""

from dataclasses import dataclass
from datetime import UTC, datetime

from store.leases import JobStore

PAUSED, RESUMED = "paused", "resumed"


def job_of(destination: str) -> str:
    return f"destination:{destination}"


@dataclass(frozen=True)
class SwitchState:
    paused: bool
    by: str = ""
    at: datetime | None = None


@dataclass
class Switches:
    jobs: JobStore

    async def state(self, destination: str) -> SwitchState:
        runs = await self.jobs.runs(job_of(destination), limit=1)
        if not runs:
            return SwitchState(False)
        latest = runs[0]
        return SwitchState(latest.outcome == PAUSED, latest.holder, latest.started)

    async def paused(self, destination: str) -> bool:
        return (await self.state(destination)).paused

    async def turn(self, destination: str, pause: bool, by: str) -> SwitchState:
        now = datetime.now(UTC)
        outcome = PAUSED if pause else RESUMED
        await self.jobs.record_run(job_of(destination), by, now, now, outcome)
        return SwitchState(pause, by, now)

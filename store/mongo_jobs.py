"""Job leases and runs on MongoDB (see ``store.leases``): one document per job with its lease,
its last run and its recent runs, so every operation is a single-document (atomic) update."""

from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from hub.base.progress import WorkProgress
from store.leases import HISTORY, JobRun

Doc = dict[str, Any]


class MongoJobs:
    def __init__(self, collection: AsyncCollection[Doc]) -> None:
        self._jobs = collection

    async def try_lease(self, job: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        try:
            await self._jobs.find_one_and_update(
                {
                    "_id": job,
                    "$or": [{"holder": {"$in": [None, holder]}}, {"expires": {"$lte": now}}],
                },
                {"$set": {"holder": holder, "expires": now + ttl}},
                projection={"_id": 1},
                upsert=True,
            )
        except DuplicateKeyError:
            # The job's document exists and the filter did not match it: the upsert tried to
            # insert a second one with the same _id. Another holder has a live lease.
            return False
        return True

    async def release(self, job: str, holder: str) -> None:
        await self._jobs.update_one(
            {"_id": job, "holder": holder}, {"$set": {"holder": None, "expires": None}}
        )

    async def last_run(self, job: str) -> datetime | None:
        doc = await self._jobs.find_one({"_id": job}, {"last_run": 1})
        started = doc.get("last_run") if doc else None
        return _utc(started) if started is not None else None

    async def record_run(
        self,
        job: str,
        holder: str,
        started: datetime,
        finished: datetime,
        outcome: str,
        error: str = "",
    ) -> None:
        run = {
            "holder": holder,
            "started": started,
            "finished": finished,
            "outcome": outcome,
            "error": error,
        }
        await self._jobs.update_one(
            {"_id": job},
            {
                # $max: a late record from a holder that lost its lease never moves it back
                "$max": {"last_run": started},
                "$push": {"runs": {"$each": [run], "$slice": -HISTORY}},
            },
            upsert=True,
        )

    async def runs(self, job: str, limit: int = HISTORY) -> Sequence[JobRun]:
        doc = await self._jobs.find_one({"_id": job}, {"runs": 1})
        runs = [
            JobRun(
                job=job,
                holder=run["holder"],
                started=_utc(run["started"]),
                finished=_utc(run["finished"]),
                outcome=run["outcome"],
                error=run.get("error", ""),
            )
            for run in (doc or {}).get("runs", [])
        ]
        return sorted(runs, key=lambda run: run.started, reverse=True)[:limit]

    async def save_progress(self, progress: WorkProgress) -> None:
        # beside the job's lease and runs, in the job's own document (a back-fill is a job)
        await self._jobs.update_one(
            {"_id": progress.work}, {"$set": {"progress": asdict(progress)}}, upsert=True
        )

    async def progress(self, work: str | None = None) -> Sequence[WorkProgress]:
        found: Doc = {"progress": {"$exists": True}}
        if work is not None:
            found["_id"] = work
        cursor = self._jobs.find(found, {"progress": 1}).sort("progress.updated", -1)
        return [_progress(doc["progress"]) async for doc in cursor]


def _progress(fields: Doc) -> WorkProgress:
    return WorkProgress(
        **{**fields, "started": _utc(fields["started"]), "updated": _utc(fields["updated"])}
    )


def _utc(moment: datetime) -> datetime:
    """PyMongo returns naive UTC datetimes unless the client is made tz-aware."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

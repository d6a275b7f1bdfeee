"""The delivery ledger on MongoDB (see ``store.ledger``): one document per submission, its
attempts as an embedded array."""

from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from hub.base.errors import StoreError
from store.ledger import FAILED, PENDING, SENDING, Attempt, LedgerQuery, Submission

Doc = dict[str, Any]


class MongoLedger:
    def __init__(self, collection: AsyncCollection[Doc]) -> None:
        self._submissions = collection

    async def create_indexes(self) -> None:
        for keys in (
            ["adapter", "interface", "business_key", "kind", "created_at"],
            ["status", "next_attempt_at"],
            ["created_at"],
            ["correlations", "created_at"],
        ):
            await self._submissions.create_index([(key, ASCENDING) for key in keys])

    async def add(self, submission: Submission) -> None:
        doc = asdict(submission)
        doc["_id"] = doc.pop("id")
        await self._submissions.insert_one(doc)

    async def get(self, id: str) -> Submission:
        doc = await self._submissions.find_one({"_id": id})
        if doc is None:
            raise StoreError(f"no submission {id}")
        return _submission(doc)

    async def latest(
        self, adapter: str, interface: str, business_key: str, kind: str = "upload"
    ) -> Submission | None:
        key = {"adapter": adapter, "interface": interface, "business_key": business_key}
        doc = await self._submissions.find_one(
            {**key, "kind": kind},
            sort=[("created_at", DESCENDING), ("_id", DESCENDING)],
        )
        return _submission(doc) if doc else None

    async def search(self, query: LedgerQuery) -> Sequence[Submission]:
        filter_: Doc = {
            key: value
            for key, value in (
                ("adapter", query.adapter),
                ("interface", query.interface),
                ("business_key", query.business_key),
            )
            if value is not None
        }
        if query.statuses:
            filter_["status"] = {"$in": list(query.statuses)}
        if query.correlation is not None:
            filter_["correlations"] = query.correlation
        created: Doc = {}
        if query.created_from:
            created["$gte"] = query.created_from
        if query.created_to:
            created["$lt"] = query.created_to
        if created:
            filter_["created_at"] = created
        cursor = self._submissions.find(filter_).sort("created_at", DESCENDING).limit(query.limit)
        return [_submission(doc) async for doc in cursor]

    async def claim(self, id: str, expected: Sequence[str], now: datetime) -> Submission | None:
        doc = await self._submissions.find_one_and_update(
            {"_id": id, "status": {"$in": list(expected)}},
            {"$set": {"status": SENDING, "updated_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        return _submission(doc) if doc else None

    async def finish(
        self,
        id: str,
        attempt: Attempt,
        status: str,
        next_attempt_at: datetime | None = None,
        external_id: str = "",
    ) -> Submission:
        changes: Doc = {
            "status": status,
            "updated_at": attempt.finished_at,
            "next_attempt_at": next_attempt_at,
            "error": attempt.error,
        }
        if external_id:
            changes["external_id"] = external_id
        doc = await self._submissions.find_one_and_update(
            {"_id": id},
            {"$set": changes, "$push": {"attempts": asdict(attempt)}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise StoreError(f"no submission {id}")
        return _submission(doc)

    async def set_status(self, id: str, status: str, error: str = "") -> Submission:
        doc = await self._submissions.find_one_and_update(
            {"_id": id},
            {
                "$set": {
                    "status": status,
                    "error": error,
                    "updated_at": datetime.now(UTC),
                    "next_attempt_at": None,
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise StoreError(f"no submission {id}")
        return _submission(doc)

    async def due(
        self, now: datetime, limit: int, adapters: Sequence[str] | None = None
    ) -> Sequence[Submission]:
        wanted: dict[str, Any] = {
            "$or": [
                {"status": PENDING},
                {"status": FAILED, "next_attempt_at": {"$lte": now}},
            ]
        }
        if adapters is not None:
            wanted["adapter"] = {"$in": list(adapters)}
        cursor = self._submissions.find(wanted).sort("created_at", ASCENDING).limit(limit)
        return [_submission(doc) async for doc in cursor]


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _submission(doc: Doc) -> Submission:
    fields = {k: v for k, v in doc.items() if k not in ("_id", "attempts")}
    fields["correlations"] = tuple(fields.get("correlations") or ())
    for key in ("created_at", "updated_at", "next_attempt_at"):
        fields[key] = _utc(fields.get(key))
    attempts = tuple(
        Attempt(
            **{
                **a,
                "started_at": _utc(a["started_at"]),
                "finished_at": _utc(a["finished_at"]),
            }
        )
        for a in doc.get("attempts", ())
    )
    return Submission(id=doc["_id"], attempts=attempts, **fields)

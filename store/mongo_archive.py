"""The message archive on MongoDB (see ``store.archive``): one document per message, its
patient identifiers as an indexed array. Claims are documents of their own, keyed by sender,
control id and content hash: the unique key makes a claim atomic across every hub process."""

from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from hub.base.errors import StoreError
from store.archive import (
    KEPT_BY_PURGE,
    RECEIVED,
    REJECTED,
    ArchivedMessage,
    ArchiveQuery,
    Claim,
    ClaimKind,
    filed_claim,
)

Doc = dict[str, Any]


class MongoArchive:
    def __init__(self, collection: AsyncCollection[Doc], claims: AsyncCollection[Doc]) -> None:
        self._messages = collection
        self._claims = claims

    async def create_indexes(self) -> None:
        for keys in (
            ["sender_application", "sender_facility", "control_id", "received_at"],
            ["message_type", "received_at"],
            ["status", "received_at"],
            ["patient_ids"],
        ):
            await self._messages.create_index([(key, ASCENDING) for key in keys])

    async def add(self, message: ArchivedMessage) -> None:
        doc = asdict(message)
        doc["_id"] = doc.pop("id")
        doc["patient_ids"], doc["resources"] = list(message.patient_ids), list(message.resources)
        await self._messages.insert_one(doc)

    async def claim(
        self, message: ArchivedMessage, since: datetime, refuse_reuse: bool = False
    ) -> Claim:
        same_sender: Doc = {
            "sender_application": message.sender_application,
            "sender_facility": message.sender_facility,
            "control_id": message.control_id,
            "received_at": {"$gte": since},
            "status": {"$ne": REJECTED},
        }
        earlier = [
            _message(doc)
            async for doc in self._messages.find(same_sender, {"raw": 0, "text": 0}).sort(
                "received_at", DESCENDING
            )
        ]
        others = [m for m in earlier if m.content_hash != message.content_hash]
        filed = filed_claim(message, others, refuse_reuse)
        if filed.kind is ClaimKind.REUSE_REFUSED:
            await self.add(filed.message)
            return filed
        key = "\x1f".join(
            (
                message.sender_application,
                message.sender_facility,
                message.control_id,
                message.content_hash,
            )
        )
        now = datetime.now(UTC)
        try:
            await self._claims.insert_one({"_id": key, "message_id": message.id, "at": now})
        except DuplicateKeyError:
            stale = {"_id": key, "at": {"$lt": since}}  # outside the window: a new message
            renewed = {"$set": {"message_id": message.id, "at": now}}
            if await self._claims.find_one_and_update(stale, renewed) is None:
                return await self._resend(key, message)
        await self.add(filed.message)
        return filed

    async def _resend(self, key: str, message: ArchivedMessage) -> Claim:
        claim = await self._claims.find_one({"_id": key})
        first_id = claim["message_id"] if claim else ""
        doc = await self._messages.find_one({"_id": first_id}, {"raw": 0, "text": 0})
        if doc is not None:
            return Claim(ClaimKind.RESEND, _message(doc))
        # claimed a moment ago by another process that has not filed the message yet
        in_flight = replace(message, id=first_id, status=RECEIVED, claimed_by="", ack="")
        return Claim(ClaimKind.RESEND, in_flight)

    async def take_over(
        self, id: str, claimant: str, stale_before: datetime
    ) -> ArchivedMessage | None:
        doc = await self._messages.find_one_and_update(
            {
                "_id": id,
                "status": RECEIVED,
                "$or": [{"claimed_by": claimant}, {"claimed_at": {"$lt": stale_before}}],
            },
            {"$set": {"claimed_by": claimant, "claimed_at": datetime.now(UTC)}},
            return_document=True,
        )
        return _message(doc) if doc else None

    async def stranded(self, stale_before: datetime, limit: int) -> Sequence[ArchivedMessage]:
        cursor = (
            self._messages.find({"status": RECEIVED, "claimed_at": {"$lt": stale_before}})
            .sort("received_at", ASCENDING)
            .limit(limit)
        )
        return [_message(doc) async for doc in cursor]

    async def set_status(
        self,
        id: str,
        status: str,
        error: str = "",
        ack: str | None = None,
        resources: Sequence[str] = (),
        processed: bool = False,
    ) -> None:
        changes: Doc = {"status": status, "error": error}
        if ack is not None:
            changes["ack"] = ack
        if resources:
            changes["resources"] = list(resources)
        update: Doc = {"$set": changes}
        if processed:
            update["$inc"] = {"processings": 1}
        await self._messages.update_one({"_id": id}, update)

    async def mark_published(self, id: str, wait: bool = True) -> None:
        # always waits: the hint only saves a commit turn on SQLite
        await self._messages.update_one(
            {"_id": id, "status": RECEIVED}, {"$set": {"status": "published"}}
        )

    async def new_attempt(self, id: str, claimant: str) -> int:
        changes = {"status": RECEIVED, "error": "", "claimed_by": claimant}
        doc = await self._messages.find_one_and_update(
            {"_id": id},
            {"$inc": {"attempts": 1}, "$set": {**changes, "claimed_at": datetime.now(UTC)}},
            return_document=True,
        )
        if doc is None:
            raise StoreError(f"no archived message {id}")
        return int(doc["attempts"])

    async def get(self, id: str) -> ArchivedMessage:
        doc = await self._messages.find_one({"_id": id})
        if doc is None:
            raise StoreError(f"no archived message {id}")
        return _message(doc)

    async def search(self, query: ArchiveQuery) -> Sequence[ArchivedMessage]:
        filter: Doc = {}
        for name in ("sender_application", "message_type", "status", "control_id"):
            if (value := getattr(query, name)) is not None:
                filter[name] = value
        if query.statuses:
            filter["status"] = {"$in": list(query.statuses)}
        if query.patient_id is not None:
            filter["patient_ids"] = query.patient_id
        window: Doc = {}
        if query.received_from is not None:
            window["$gte"] = query.received_from
        if query.received_to is not None:
            window["$lt"] = query.received_to
        if window:
            filter["received_at"] = window
        cursor = self._messages.find(filter).sort("received_at", ASCENDING).limit(query.limit)
        return [_message(doc) async for doc in cursor]

    async def purge(self, message_type: str, before: datetime) -> int:
        result = await self._messages.delete_many(
            {
                "message_type": message_type,
                "received_at": {"$lt": before},
                "status": {"$nin": list(KEPT_BY_PURGE)},
            }
        )
        return int(result.deleted_count)


def _message(doc: Doc) -> ArchivedMessage:
    fields = {k: v for k, v in doc.items() if k != "_id"}
    for name in ("received_at", "claimed_at"):
        moment = fields.get(name)
        if moment is not None and moment.tzinfo is None:  # MongoDB keeps UTC without a zone
            fields[name] = moment.replace(tzinfo=UTC)
    fields["raw"] = bytes(fields.get("raw", b""))
    fields.setdefault("text", "")
    fields["patient_ids"] = tuple(fields.get("patient_ids", ()))
    fields["resources"] = tuple(fields.get("resources", ()))
    return ArchivedMessage(id=doc["_id"], **fields)

"""The message archive on MongoDB (see ``store.archive``): one document per message, its
patient identifiers as an indexed array."""

from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

from hub.errors import StoreError
from store.archive import ArchivedMessage, ArchiveQuery

Doc = dict[str, Any]


class MongoArchive:
    def __init__(self, collection: AsyncCollection[Doc]) -> None:
        self._messages = collection

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

    async def find_duplicate(
        self, sender_application: str, sender_facility: str, control_id: str, since: datetime
    ) -> ArchivedMessage | None:
        doc = await self._messages.find_one(
            {
                "sender_application": sender_application,
                "sender_facility": sender_facility,
                "control_id": control_id,
                "received_at": {"$gte": since},
                "status": {"$ne": "rejected"},
            },
            sort=[("received_at", DESCENDING)],
        )
        return _message(doc) if doc else None

    async def set_status(
        self,
        id: str,
        status: str,
        error: str = "",
        ack: str | None = None,
        resources: Sequence[str] = (),
    ) -> None:
        changes: Doc = {"status": status, "error": error}
        if ack is not None:
            changes["ack"] = ack
        if resources:
            changes["resources"] = list(resources)
        await self._messages.update_one({"_id": id}, {"$set": changes})

    async def mark_published(self, id: str, ack: str, wait: bool = True) -> None:
        # always waits: the hint only saves a commit turn on SQLite
        await self._messages.update_one({"_id": id}, {"$set": {"ack": ack}})
        await self._messages.update_one(
            {"_id": id, "status": "received"}, {"$set": {"status": "published"}}
        )

    async def new_attempt(self, id: str) -> int:
        doc = await self._messages.find_one_and_update(
            {"_id": id},
            {"$inc": {"attempts": 1}, "$set": {"status": "received", "error": ""}},
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
            {"message_type": message_type, "received_at": {"$lt": before}}
        )
        return int(result.deleted_count)


def _message(doc: Doc) -> ArchivedMessage:
    fields = {k: v for k, v in doc.items() if k != "_id"}
    received = fields["received_at"]
    fields["received_at"] = received.replace(tzinfo=UTC) if received.tzinfo is None else received
    fields["raw"] = bytes(fields["raw"])
    fields["patient_ids"] = tuple(fields.get("patient_ids", ()))
    fields["resources"] = tuple(fields.get("resources", ()))
    return ArchivedMessage(id=doc["_id"], **fields)

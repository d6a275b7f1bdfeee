"""Writing what one message maps to: one plan (every resource by its write mode, then the
patient merges the message asks for, ADT^A40) that the store resolves in one transaction."""

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from hub.base.errors import MappingError, ResourceGoneError, ResourceNotFoundError
from hub.base.json import Json
from hub.hl7v2.mapping import Mapped, Merge, WriteMode
from store.index import extract
from store.plan import Write, content_digest
from store.plan import WriteMode as StoreMode
from store.resources import ResourceStore

# More resources than this pointing at one merged patient is not a merge but a data problem:
# the message fails and a person looks.
MERGE_LIMIT = 10_000


T = TypeVar("T")


async def persist(store: ResourceStore, mapped: Mapped, offload: bool = False) -> list[str]:
    """Write ``mapped``; returns the ``Type/id`` of every resource the message produced.

    One plan: the store decides each write against what it holds at that moment (a merge over
    the current content, context only where absent) and commits them together, so nothing is
    written half. A version conflict (a patient moved by a merge meanwhile) fails the plan and
    the message is retried.

    The index rows of the resources the message owns are extracted here, so the store's writer
    spends its time in SQLite, and only for those whose content changed: a replay of a message
    already stored costs its mapping, its digests and one read. ``offload`` (a big message)
    does the digests and the extraction in a worker thread."""
    present, rewritten = await _follow_merged_patients(store, mapped)
    owned = [r for r in mapped.resources if mapped.mode(r) is WriteMode.REPLACE]
    digests = await _work(offload, lambda: {_key(r): content_digest(r) for r in owned})
    stored = await store.digests([(r["resourceType"], r["id"]) for r in owned])
    changed = [
        r for r in owned if stored.get(_key(r)) != digests[_key(r)] and _key(r) not in rewritten
    ]
    indexes = await _work(offload, lambda: {_key(r): extract(r) for r in changed})
    writes: list[Write] = []
    for resource in mapped.resources:
        key, mode = _key(resource), mapped.mode(resource)
        if mode is WriteMode.IF_ABSENT and key in present:
            continue  # read a moment ago for the merge check: there, so nothing to write
        digest = digests.get(key) if key not in rewritten else None
        index = indexes.get(key)  # None: the store extracts, if the content changed after all
        writes.append(Write.of(StoreMode(mode.value), resource, index=index, digest=digest))
    written = {write.key for write in writes}
    for merge in mapped.merges:
        moved = await _moved_references(store, merge)
        writes.extend(write for write in moved if write.key not in written)
    await store.apply(writes)
    return [_key(r) for r in mapped.resources]


async def _work(offload: bool, work: Callable[[], T]) -> T:
    return await asyncio.to_thread(work) if offload else work()


async def _follow_merged_patients(
    store: ResourceStore, mapped: Mapped
) -> tuple[set[str], set[str]]:
    """A sender that still uses a merged-away patient number (the LIS has not caught up with
    the HIS's A40) gets its results filed under the surviving patient. Returns the context
    Patients found in the store, so the write need not read them again, and the resources
    whose references were changed."""
    present: set[str] = set()
    rewritten: set[str] = set()
    for resource in list(mapped.resources):
        if resource["resourceType"] != "Patient" or mapped.mode(resource) is WriteMode.REPLACE:
            continue
        try:
            stored = orjson.loads((await store.read("Patient", resource["id"])).body or b"{}")
        except (ResourceNotFoundError, ResourceGoneError):
            continue
        present.add(_key(resource))
        survivor = next(
            (
                link["other"]["reference"]
                for link in stored.get("link", [])
                if link.get("type") == "replaced-by" and "reference" in link.get("other", {})
            ),
            None,
        )
        if survivor:
            mapped.resources.remove(resource)
            retired = f"Patient/{resource['id']}"
            for other in mapped.resources:
                if _replace_reference(other, retired, survivor):
                    rewritten.add(_key(other))
    return present, rewritten


def _key(resource: Json) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


async def _moved_references(store: ResourceStore, merge: Merge) -> list[Write]:
    """Every resource that refers to the retired patient, pointing at the survivor instead;
    each only from the version read, so a change meanwhile fails the plan (and it is retried)."""
    found = await store.referencing(merge.retired, MERGE_LIMIT + 1)
    if len(found) > MERGE_LIMIT:
        raise MappingError(f"more than {MERGE_LIMIT} resources refer to the merged patient")
    writes = []
    for stored in found:
        key = f"{stored.type}/{stored.id}"
        if key in (merge.retired, merge.survivor) or stored.body is None:
            continue  # the two Patients' own links must keep naming each other
        body = orjson.loads(stored.body)
        if _replace_reference(body, merge.retired, merge.survivor):
            writes.append(Write.of(StoreMode.REPLACE, body, if_match=stored.version))
    return writes


def _replace_reference(node: Any, old: str, new: str) -> bool:
    """Point every ``reference`` equal to ``old`` at ``new``, at any depth; True if any did."""
    changed = False
    if isinstance(node, dict):
        if node.get("reference") == old:
            node["reference"] = new
            changed = True
        children: Any = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return False
    for child in children:
        if isinstance(child, dict | list):
            changed = _replace_reference(child, old, new) or changed
    return changed

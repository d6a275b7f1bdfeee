"""Writing what one message maps to: every resource in one store transaction, each by its
write mode, then the patient merges the message asks for (ADT^A40)."""

from typing import Any

import orjson

from hub.errors import ResourceGoneError, ResourceNotFoundError, VersionConflictError
from hub.hl7v2.mapping import Json, Mapped, Merge, WriteMode
from store.resources import ResourceStore

# More resources than this pointing at one merged patient is not a merge but a data problem:
# the message fails and a person looks.
MERGE_LIMIT = 10_000


async def persist(store: ResourceStore, mapped: Mapped) -> list[str]:
    """Write ``mapped``; returns the ``Type/id`` of every resource the message produced.

    A version conflict (someone wrote the same resource since it was read for a merge) leaves
    the transaction and the message is retried, so nothing is written half."""
    present = await _follow_merged_patients(store, mapped)
    async with store.transaction():
        for resource in mapped.resources:
            mode = mapped.mode(resource)
            if mode is WriteMode.IF_ABSENT and _key(resource) in present:
                continue  # read a moment ago for the merge check: there, so nothing to write
            await _write(store, resource, mode)
        for merge in mapped.merges:
            await _move_references(store, merge)
    return [_key(r) for r in mapped.resources]


async def _write(store: ResourceStore, resource: Json, mode: WriteMode) -> None:
    if mode is WriteMode.REPLACE:
        await store.update(resource)
        return
    try:
        stored = await store.read(resource["resourceType"], resource["id"])
    except ResourceNotFoundError:
        try:
            await store.update(resource, if_match=0)
        except VersionConflictError:
            if mode is WriteMode.MERGE:
                raise  # created meanwhile: the merge must see that content, so retry later
            # if-absent: another message created it a moment ago, which is all we wanted
        return
    except ResourceGoneError:  # deleted on purpose: context does not bring it back
        if mode is WriteMode.MERGE:
            await store.update(resource)
        return
    if mode is WriteMode.IF_ABSENT:
        return
    current = orjson.loads(stored.body or b"{}")
    await store.update({**current, **resource}, if_match=stored.version)


async def _follow_merged_patients(store: ResourceStore, mapped: Mapped) -> set[str]:
    """A sender that still uses a merged-away patient number (the LIS has not caught up with
    the HIS's A40) gets its results filed under the surviving patient. Returns the context
    Patients found in the store, so the write need not read them again."""
    present: set[str] = set()
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
                _replace_reference(other, retired, survivor)
    return present


def _key(resource: Json) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


async def _move_references(store: ResourceStore, merge: Merge) -> None:
    found = await store.referencing(merge.retired, MERGE_LIMIT + 1)
    if len(found) > MERGE_LIMIT:
        raise ValueError(f"more than {MERGE_LIMIT} resources refer to the merged patient")
    for stored in found:
        key = f"{stored.type}/{stored.id}"
        if key in (merge.retired, merge.survivor) or stored.body is None:
            continue  # the two Patients' own links must keep naming each other
        body = orjson.loads(stored.body)
        if _replace_reference(body, merge.retired, merge.survivor):
            await store.update(body, if_match=stored.version)


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

"""An index kept up by changed rows only must answer every search as one written afresh: every
supported type is written first with other content, then updated to its example (and some are
deleted and written again); a second store gets the examples once. For every parameter value the
examples carry, both stores must find the same resources."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from store.index import IndexRows, extract
from store.plan import Write, WriteMode
from store.query import parse_search
from store.resources import ResourceStore
from tests.fixtures.all_types import EXAMPLES
from tests.stores import BACKENDS, open_store


def altered(node: Any) -> Any:
    """Other content of the same shape: every text changed, every number moved."""
    if isinstance(node, dict):
        return {k: v if k in ("resourceType", "id") else altered(v) for k, v in node.items()}
    if isinstance(node, list):
        return [altered(item) for item in node]
    if isinstance(node, bool):
        return not node
    if isinstance(node, int | float):
        return node + 7
    if isinstance(node, str):
        return node + "x" if not node.startswith("urn:") else node
    return node


def queries(rows: IndexRows) -> Iterator[tuple[str, str]]:
    """A search that the rows' own values must match, per kind."""
    for param, system, code in rows.token:
        yield param, f"{system}|{code}" if system else (code or "")
    for param, text in rows.token_text:
        yield f"{param}:text", text
    for param, _, exact in rows.string:
        yield f"{param}:exact", exact
    for param, lo, _ in rows.date:
        yield param, f"ge{lo}"
    for param, target in rows.reference:
        yield param, target
    for param, quantity, _, _ in rows.quantity:
        yield param, f"ge{quantity}"
    for param, number in rows.number:
        yield param, f"ge{number}"
    for param, uri in rows.uri:
        yield param, uri
    for param in {
        row[0] for kind in ("token", "string", "reference", "date") for row in getattr(rows, kind)
    }:
        yield f"{param}:missing", "false"


@pytest.fixture(params=BACKENDS)
async def stores(
    request: Any, tmp_path: Path
) -> AsyncIterator[tuple[ResourceStore, ResourceStore]]:
    async with (
        open_store(request.param, tmp_path / "updated") as updated,
        open_store(request.param, tmp_path / "fresh") as fresh,
    ):
        yield updated, fresh


async def test_every_search_answers_alike_on_updated_and_fresh_indexes(
    stores: tuple[ResourceStore, ResourceStore],
) -> None:
    updated, fresh = stores
    examples = list(EXAMPLES.values())
    others = [{**altered(r), "id": f"other-{r['id']}"} for r in examples]
    await updated.apply([Write.of(WriteMode.REPLACE, altered(r)) for r in examples])
    for n, resource in enumerate(examples):  # some go through a deletion first
        if n % 3 == 0:
            await updated.delete(resource["resourceType"], resource["id"])
    await updated.apply([Write.of(WriteMode.REPLACE, r) for r in [*examples, *others]])
    await fresh.apply([Write.of(WriteMode.REPLACE, r) for r in [*examples, *others]])
    compared = differing = 0
    for resource in examples:
        type_ = resource["resourceType"]
        # the example's own values, and the values it had before (found no more, but in the
        # "other-" resource that still has them)
        asked = [*queries(extract(resource)), *queries(extract(altered(resource)))]
        for name, value in dict.fromkeys(asked):
            query = parse_search(type_, [(name, value)])
            if query.unknown or not query.clauses:
                continue
            found = [
                sorted(v.id for v in (await store.search(query, count=1000)).items)
                for store in (updated, fresh)
            ]
            compared += 1
            if found[0] != found[1]:
                differing += 1
                print(f"DIFFERENT {type_}?{name}={value}: {found}")

    print(f"index updates: {compared} searches compared, {differing} differ")
    assert compared > 1000
    assert differing == 0
    own = parse_search("Patient", [("name:exact", EXAMPLES["Patient"]["name"][0]["text"])])
    assert [v.id for v in (await updated.search(own)).items] == [EXAMPLES["Patient"]["id"]]

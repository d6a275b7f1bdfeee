"""Terminology look-ups (``CodeSystem/$lookup``, ``ConceptMap/$translate``) through a cache.

A CodeSystem is read by its url and the ConceptMaps by their search once, then served from an
aiocache ``SimpleMemoryCache`` for TTL_S. A write of a CodeSystem or a ConceptMap through this
process empties it at once; one written by another process is seen within TTL_S. What is
cached is terminology, never patient data, and an operation reaches it only after the
caller's scopes allowed the operation (``hub.fhir.access``)."""

from collections.abc import Iterable
from typing import Any

import orjson
from aiocache import SimpleMemoryCache

from store.query import parse_search
from store.resources import ResourceStore

TTL_S = 60.0
TERMINOLOGY_TYPES = frozenset({"CodeSystem", "ConceptMap"})
MAX_MAPS = 50  # ConceptMaps read for one $translate
Criteria = tuple[tuple[str, str], ...]


class Terminology:
    def __init__(self, resources: ResourceStore) -> None:
        self.resources = resources
        self._cache = SimpleMemoryCache()

    async def code_system(self, url: str) -> dict[str, Any] | None:
        """The current CodeSystem with this url, or None."""
        key = f"CodeSystem|{url}"
        found: dict[str, Any] | None = await self._cache.get(key)
        if found is None:
            page = await self.resources.search(parse_search("CodeSystem", [("url", url)]), 1)
            if not page.items:
                return None  # not cached: a CodeSystem loaded a moment later is found
            found = orjson.loads(page.items[0].body or b"{}")
            await self._cache.set(key, found, ttl=TTL_S)
        return found

    async def concept_maps(self, criteria: Criteria) -> list[dict[str, Any]]:
        """The current ConceptMaps that match ``criteria`` (url, or source and target system)."""
        key = "ConceptMap|" + "&".join(f"{name}={value}" for name, value in criteria)
        found: list[dict[str, Any]] | None = await self._cache.get(key)
        if found is None:
            query = parse_search("ConceptMap", list(criteria))
            page = await self.resources.search(query, count=MAX_MAPS)
            found = [orjson.loads(stored.body or b"{}") for stored in page.items]
            await self._cache.set(key, found, ttl=TTL_S)
        return found

    async def written(self, types: Iterable[str]) -> None:
        """Resources of these types were written: what the cache holds may be stale."""
        if TERMINOLOGY_TYPES.intersection(types):
            await self._cache.clear()

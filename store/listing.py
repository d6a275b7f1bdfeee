"""How many rows one listing of the archive or the ledger may return: operations page by time
(``since``), and no request reads a whole table into memory; and the pages of a search read one
after another, for the work that needs every match (a rebuild, a day's count)."""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

from store.resources import SearchPage

MAX_LISTED = 1000


async def paged(fetch: Callable[[str | None], Awaitable[SearchPage]]) -> AsyncIterator[Any]:
    """Every body of a paged search (``fetch`` takes the cursor), page after page."""
    cursor: str | None = None
    while True:
        page = await fetch(cursor)
        for version in page.items:
            if version.body is not None:
                yield orjson.loads(version.body)
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def listing_limit(raw: object, default: int = 100) -> int:
    """``limit`` as given by a person (text or a number); ValueError says what is allowed."""
    text = str(default if raw is None or raw == "" else raw)
    if not text.isdigit() or not 1 <= int(text) <= MAX_LISTED:
        raise ValueError(f"limit is a whole number from 1 to {MAX_LISTED}")
    return int(text)

"""Page cursors of searches, the same for every backend: the sort values of a page's last
row, as opaque URL-safe text; a cursor from another search is refused with a clear error."""

import base64
import binascii
from typing import Any

import orjson

from hub.base.errors import SearchError


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str, length: int) -> list[Any]:
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise SearchError("_cursor: not a cursor this server gave out") from exc
    if not isinstance(values, list) or len(values) != length:
        raise SearchError("_cursor: it belongs to a search with another sort order")
    return values

"""How many rows one listing of the archive or the ledger may return: operations page by time
(``since``), and no request reads a whole table into memory."""

MAX_LISTED = 1000


def listing_limit(raw: object, default: int = 100) -> int:
    """``limit`` as given by a person (text or a number); ValueError says what is allowed."""
    text = str(default if raw is None or raw == "" else raw)
    if not text.isdigit() or not 1 <= int(text) <= MAX_LISTED:
        raise ValueError(f"limit is a whole number from 1 to {MAX_LISTED}")
    return int(text)

"""Which store backend a hub uses: MongoDB when a URL is given, else the embedded SQLite files
in the data directory."""

from pathlib import Path

from store.base import Store
from store.mongo import MongoStore
from store.sqlite import SqliteStore


def make_store(mongo_url: str, data_dir: Path) -> Store:
    if mongo_url:
        return MongoStore(mongo_url)
    return SqliteStore(data_dir / "jianhu.sqlite3")

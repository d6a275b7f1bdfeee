"""What the runtime needs of any store backend: open it, check it, close it.

The full resource interface (create, read, search, history, transactions) lands with the
clinical store; the runtime depends only on this narrow part.
"""

from typing import Protocol


class Store(Protocol):
    async def open(self) -> None: ...

    async def ping(self) -> None:
        """Raise ``StoreError`` when the store cannot serve a request right now."""

    async def close(self) -> None: ...

"""What the runtime needs of any store backend: open it, check it, close it.

The resource interface itself (create, read, search, history, transactions) is
``store.resources.ResourceStore``.
"""

from typing import Protocol

from store.archive import MessageArchive
from store.leases import JobStore
from store.ledger import Ledger
from store.resources import ResourceStore


class Store(Protocol):
    async def open(self) -> None: ...

    async def ping(self) -> None:
        """Raise ``StoreError`` when the store cannot serve a request right now."""

    async def close(self) -> None: ...

    @property
    def resources(self) -> ResourceStore:
        """The FHIR resources; raises ``StoreError`` while the store is closed."""

    @property
    def archive(self) -> MessageArchive:
        """The HL7 v2 message archive."""

    @property
    def ledger(self) -> Ledger:
        """The outbound delivery ledger."""

    @property
    def jobs(self) -> JobStore:
        """Leases and run history of the scheduler's periodic jobs."""

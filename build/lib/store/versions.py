"""A stored version of a FHIR resource, as every part of the store hands it out."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

Resource = dict[str, Any]


@dataclass(frozen=True)
class StoredVersion:
    """One version of one resource as stored; ``body`` is None for a deletion."""

    type: str
    id: str
    version: int
    last_updated: datetime
    body: bytes | None

    @property
    def deleted(self) -> bool:
        return self.body is None

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'


@dataclass(frozen=True)
class WriteResult:
    version: StoredVersion
    created: bool  # an update that made the resource (update-as-create) says so
    changed: bool = True  # False: the content was there already; ``version`` is the current

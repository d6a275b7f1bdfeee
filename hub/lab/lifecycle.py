"""The life of a specimen tube (标本全流程), from the order to the printed report, as the lab
turnaround screen follows it: each stage is time-stamped the first time a feed says it
happened. This module holds the stages, the events and the track of one tube; the events come
from the FHIR resources the store holds (``lifecycle_fhir``) and, for what the HL7 mapping does
not carry (LIS status updates, the reviewer of a report), from the HL7 message itself
(``lifecycle_hl7``). Which fields and codes drive which stage is configuration per LIS in
``fhir_profiles/data/lab-lifecycle.json``.

A track is keyed by the Specimen resource id: the normalizer derives it from the barcode and
the application that printed it, so an SSU^U03 that names the barcode and the FHIR Specimen of
the order meet on one track."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum
from functools import cache

from hub.base.hospital_time import HOSPITAL
from hub.base.json import Json
from hub.base.site_files import read_json


class Stage(IntEnum):
    """Stages in the order a tube goes through them; a later stage implies the earlier ones."""

    ORDERED = 0  # 开单
    COLLECTED = 1  # 采集
    RECEIVED = 2  # 签收 (the tube reached the lab)
    REGISTERED = 3  # 核收 (LIS accession number given)
    IN_TEST = 4  # 上机检测
    PRELIMINARY = 5  # 初步结果
    FINAL = 6  # 最终结果
    REVIEWED = 7  # 审核
    REPORTED = 8  # 报告发布
    PRINTED = 9  # 打印

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def named(cls, name: str) -> "Stage":
        return cls[name.upper()]


class Priority(StrEnum):
    STAT = "stat"  # 急诊/加急
    ROUTINE = "routine"  # 常规


class Source(StrEnum):
    OUTPATIENT = "outpatient"  # 门诊
    INPATIENT = "inpatient"  # 住院
    EMERGENCY = "emergency"  # 急诊


CANCELLED = "cancelled"  # a configured code that withdraws the tube rather than moving it


@dataclass(frozen=True, slots=True)
class TrackDetails:
    """What a feed says about the tube besides its stage; None is "this feed does not say"."""

    barcode: str | None = None
    patient: str | None = None  # "Patient/<id>": a reference, never a name
    test_group: str | None = None
    priority: Priority | None = None
    source: Source | None = None
    department: str | None = None  # the requesting department (申请科室)
    request: str | None = None  # ServiceRequest id


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    """One stage reached at one time. ``specimen`` is the track key; an event that names only
    its order (an ORL without SPM, a Task on a ServiceRequest) carries ``request`` and is
    applied to the tubes of that order."""

    stage: Stage
    at: datetime
    origin: str  # which feed and element said it, for the audit trail
    specimen: str | None = None
    request: str | None = None
    correction: bool = False
    cancelled: bool = False
    details: TrackDetails = TrackDetails()

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("lifecycle times must be timezone-aware")
        if self.specimen is None and self.request is None:
            raise ValueError("a lifecycle event names a specimen or an order")


@dataclass(frozen=True, slots=True)
class Correction:
    """A result corrected after it was first given: the first time stays, this is kept."""

    stage: Stage
    at: datetime
    origin: str


@dataclass(slots=True)
class SpecimenTrack:
    specimen: str
    barcode: str | None = None
    patient: str | None = None
    test_group: str | None = None
    priority: Priority = Priority.ROUTINE
    source: Source = Source.OUTPATIENT
    department: str | None = None
    times: dict[Stage, datetime] = field(default_factory=dict)
    stage: Stage | None = None  # the furthest stage reached
    corrections: list[Correction] = field(default_factory=list)
    requests: set[str] = field(default_factory=set)
    cancelled_requests: set[str] = field(default_factory=set)
    cancelled: bool = False

    def apply(self, event: LifecycleEvent) -> None:
        """Out of order is normal (the LIS and the HIS send on their own schedules): an earlier
        stage arriving late fills in its time but never moves the tube back; a stage already
        timed keeps its first time."""
        self._take(event.details)
        if event.cancelled:
            self._cancel(event.request)
            return
        if event.correction:
            self.corrections.append(Correction(event.stage, event.at, event.origin))
        self.times.setdefault(event.stage, event.at)
        if self.stage is None or event.stage > self.stage:
            self.stage = event.stage

    def time_of(self, stage: Stage) -> datetime | None:
        return self.times.get(stage)

    def started(self, start: Stage, target: Stage) -> datetime | None:
        """When the span from ``start`` towards ``target`` began: the start stage's time, or
        when a feed skipped it, the earliest stage timed between the two."""
        found = [t for s, t in self.times.items() if start <= s < target]
        return min(found) if found else None

    def reached(self, stage: Stage) -> bool:
        return self.stage is not None and self.stage >= stage

    def _take(self, details: TrackDetails) -> None:
        for name in ("barcode", "patient", "test_group", "priority", "source", "department"):
            value = getattr(details, name)
            if value is not None:
                setattr(self, name, value)
        if details.request:
            self.requests.add(details.request)

    def _cancel(self, request: str | None) -> None:
        # a tube shared by two orders (肝功能 and 肾功能 on one serum tube) is withdrawn only
        # when every order on it is cancelled
        if request is None:
            self.cancelled = True
            return
        self.requests.add(request)
        self.cancelled_requests.add(request)
        self.cancelled = self.requests <= self.cancelled_requests


# --- configuration ---


@dataclass(frozen=True)
class LifecycleConfig:
    test_groups: Mapping[str, str]
    stat_priorities: frozenset[str]
    encounter_sources: Mapping[str, str]
    fhir: Json
    hl7: Json

    @classmethod
    def from_json(cls, data: Json) -> "LifecycleConfig":
        return cls(
            test_groups=data.get("test_groups", {}),
            stat_priorities=frozenset(data.get("stat_priorities", ["stat"])),
            encounter_sources=data.get("encounter_sources", {}),
            fhir=data.get("fhir", {}),
            hl7=data.get("hl7", {}),
        )

    def for_sender(self, sender: str) -> Json:
        found: Json = self.hl7.get(sender) or self.hl7.get("default", {})
        return found


@cache
def lifecycle_config() -> LifecycleConfig:
    return LifecycleConfig.from_json(read_json("fhir_profiles", "data/lab-lifecycle.json"))


def parse_time(text: str | None) -> datetime | None:
    """A FHIR dateTime/instant with a time of day; a date alone says nothing about TAT."""
    if not text or "T" not in text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=HOSPITAL)

"""The pool tube of 10-in-1 testing (混检) as FHIR: the rules, the resident ID card, the
pool Specimen with a child Specimen per person, the recall Task, and the checks on adding a
person. Pure functions; ``pooling`` keeps them in the store (see its docstring for the model)."""

import copy
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from functools import cache
from typing import Any

from fhir_profiles.identifiers import RESIDENT_ID_CARD, id_card_problem
from hub.base.errors import (
    PermanentError,
)
from hub.base.hospital_time import HOSPITAL
from hub.base.site_files import read_json
from hub.hl7v2.mapping.common import label, stable_id
from store.resources import Resource

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
UCUM = "http://unitsofmeasure.org"
COLLECTION_POINT = "urn:jianhu:structuredefinition:collection-point"  # 采样点
_BARCODE = re.compile(r"[0-9A-Za-z-]{4,32}")  # printable as Code 128 and typeable by hand
WRITE_ATTEMPTS = 8  # optimistic retries when scanners race on one tube


def shanghai_now() -> datetime:
    return datetime.now(HOSPITAL)


# --- rules ---


@dataclass(frozen=True)
class PoolingRules:
    pool_size: int  # 10 for 10合1
    barcode_namespace: str  # the application that issues tube barcodes, as the LIS echoes it
    specimen_type: Resource  # CodeableConcept 咽拭子
    retest_code: Resource  # CodeableConcept 单管复检
    retest_priority: str  # Task.priority of a recall
    tag_system: str  # meta.tag system of the workflow states

    @property
    def barcode_system(self) -> str:
        return f"urn:jianhu:sid:specimen:{label(self.barcode_namespace)}"


@cache
def load_rules() -> PoolingRules:
    return pooling_rules(read_json("fhir_profiles", "data/pooled-testing.json"))


def pooling_rules(raw: dict[str, Any]) -> PoolingRules:
    return PoolingRules(
        pool_size=int(raw["pool_size"]),
        barcode_namespace=raw["barcode_namespace"],
        specimen_type=raw["specimen_type"],
        retest_code=raw["retest_task"]["code"],
        retest_priority=raw["retest_task"]["priority"],
        tag_system=raw["state_tag_system"],
    )


# --- errors: messages go to the collection desk, so they name tubes, never people ---


class PoolingError(PermanentError):
    """A pooled-testing request refused by a rule."""


class IdCardError(PoolingError):
    """The scanned resident ID number is not valid (length, birth date, check character)."""


class TubeNotFoundError(PoolingError):
    pass


class TubeClosedError(PoolingError):
    pass


class TubeFullError(PoolingError):
    pass


class AlreadyInTubeError(PoolingError):
    pass


class EmptyTubeError(PoolingError):
    pass


class ResultConflictError(PoolingError):
    """A second, different result for a tube: a correction is a person's decision."""


# --- resident ID card (居民身份证) ---


@dataclass(frozen=True)
class ResidentIdCard:
    number: str
    birth_date: date
    gender: str  # FHIR administrative gender


def read_id_card(scanned: str) -> ResidentIdCard:
    """The number as scanned (spaces, a lower-case x) checked with GB 11643; birth date from
    positions 7-14, sex from position 17 (odd: male, even: female)."""
    number = scanned.strip().upper()
    if problem := id_card_problem(number):
        raise IdCardError(problem)
    birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    return ResidentIdCard(number, birth, "male" if int(number[16]) % 2 else "female")


@dataclass(frozen=True)
class Person:
    """What the collection desk takes: the card scan plus name, phone and address."""

    id_card: str
    name: str
    phone: str | None = None
    address: str | None = None


def patient_id(card: ResidentIdCard) -> str:
    """The id the ADT mapping gives a patient whose first identifier is this card, so a later
    HIS message about the same person updates this Patient rather than making a second."""
    return stable_id("pat", RESIDENT_ID_CARD, card.number)


def patient_resource(card: ResidentIdCard, person: Person) -> Resource:
    # the name stays whole in ``text``: compound surnames (欧阳, 司马) make a split a guess
    patient: Resource = {
        "resourceType": "Patient",
        "id": patient_id(card),
        "identifier": [{"system": RESIDENT_ID_CARD, "value": card.number}],
        "name": [{"use": "official", "text": person.name.strip()}],
        "gender": card.gender,
        "birthDate": card.birth_date.isoformat(),
    }
    if person.phone and person.phone.strip():
        patient["telecom"] = [{"system": "phone", "value": person.phone.strip(), "use": "mobile"}]
    if person.address and person.address.strip():
        patient["address"] = [{"use": "home", "text": person.address.strip()}]
    return patient


# --- the tube and its people as FHIR resources ---


class MemberState(StrEnum):
    POOLED = "pooled"  # waiting for the tube's result
    RETEST = "retest-single-tube"  # 单采单检: positive tube, recalled
    RELEASED = "released"  # negative tube: 解除


class PoolFinding(StrEnum):
    POSITIVE = "pool-positive"
    NEGATIVE = "pool-negative"


def instant(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(HOSPITAL).isoformat(timespec="seconds")


def check_barcode(barcode: str) -> str:
    if not _BARCODE.fullmatch(barcode):
        raise PoolingError("a tube barcode has 4 to 32 letters, digits or hyphens")
    return barcode


def new_barcode(now: datetime) -> str:
    """``HJ`` + date + 6 random digits: 14 characters that a scanner reads in one pass."""
    return f"HJ{now.astimezone(HOSPITAL):%y%m%d}{secrets.randbelow(10**6):06d}"


def pool_id(barcode: str, rules: PoolingRules) -> str:
    return stable_id("spc", rules.barcode_namespace, barcode)


def swabs(count: int) -> Resource:
    return {"value": count, "unit": "swab", "system": UCUM, "code": "{swab}"}


def pool_specimen(
    barcode: str, collection_point: str, now: datetime, rules: PoolingRules
) -> Resource:
    number = {"system": rules.barcode_system, "value": check_barcode(barcode)}
    return {
        "resourceType": "Specimen",
        "id": pool_id(barcode, rules),
        "extension": [{"url": COLLECTION_POINT, "valueString": collection_point}],
        "identifier": [{"type": {"coding": [{"system": V2_0203, "code": "PLAC"}]}, **number}],
        "status": "available",
        "type": copy.deepcopy(rules.specimen_type),
        "collection": {"collectedPeriod": {"start": instant(now)}},
        "container": [{"identifier": [number], "specimenQuantity": swabs(0)}],
    }


def member_specimen(pool: Resource, patient: str, now: datetime) -> Resource:
    """One person's swab in the pool; ``patient`` is ``Patient/<id>``."""
    return {
        "resourceType": "Specimen",
        "id": stable_id("spc", pool["id"], patient),
        "status": "available",
        "type": copy.deepcopy(pool["type"]),
        "subject": {"reference": patient},
        "parent": [{"reference": f"Specimen/{pool['id']}"}],
        "collection": {"collectedDateTime": instant(now)},
    }


def recall_task(pool: Resource, member: Resource, now: datetime, rules: PoolingRules) -> Resource:
    patient = member["subject"]["reference"]
    return {
        "resourceType": "Task",
        "id": stable_id("tsk", pool["id"], patient),
        "status": "requested",
        "intent": "order",
        "priority": rules.retest_priority,
        "code": copy.deepcopy(rules.retest_code),
        "focus": {"reference": f"Specimen/{pool['id']}"},
        "for": {"reference": patient},
        "authoredOn": instant(now),
    }


def tagged(resource: Resource, system: str, code: str) -> Resource:
    """A copy carrying ``code`` as its only workflow tag of ``system`` (version meta dropped:
    the store writes its own)."""
    found = copy.deepcopy(resource)
    meta = {k: v for k, v in found.get("meta", {}).items() if k not in ("versionId", "lastUpdated")}
    meta["tag"] = [t for t in meta.get("tag", []) if t.get("system") != system]
    meta["tag"].append({"system": system, "code": code})
    found["meta"] = meta
    return found


def tag_of(resource: Resource, system: str) -> str | None:
    for tag in resource.get("meta", {}).get("tag", []):
        if tag.get("system") == system:
            code: str = tag.get("code", "")
            return code
    return None


def _period(pool: Resource) -> dict[str, str]:
    period: dict[str, str] = pool.get("collection", {}).get("collectedPeriod", {})
    return period


def closed(pool: Resource, now: datetime) -> Resource:
    """The pool with its collection period ended (unchanged when already closed)."""
    found = copy.deepcopy(pool)
    collection = found.setdefault("collection", {})
    collection.setdefault("collectedPeriod", {}).setdefault("end", instant(now))
    return found


@dataclass(frozen=True)
class TubeMember:
    specimen: Resource  # the child Specimen as stored
    state: MemberState

    @property
    def patient(self) -> str:
        """``Patient/<id>``"""
        reference: str = self.specimen["subject"]["reference"]
        return reference


@dataclass(frozen=True)
class Tube:
    """A pool tube as stored: the pool Specimen (at ``version``) and its people."""

    barcode: str
    specimen: Resource
    version: int
    members: tuple[TubeMember, ...]
    rules: PoolingRules

    @property
    def collection_point(self) -> str:
        for extension in self.specimen.get("extension", []):
            if extension["url"] == COLLECTION_POINT:
                point: str = extension["valueString"]
                return point
        return ""

    @property
    def closed_at(self) -> str | None:
        end: str | None = _period(self.specimen).get("end")
        return end

    @property
    def received_at(self) -> str | None:
        received: str | None = self.specimen.get("receivedTime")
        return received

    @property
    def accession(self) -> str | None:
        number: str | None = self.specimen.get("accessionIdentifier", {}).get("value")
        return number

    @property
    def outcome(self) -> PoolFinding | None:
        code = tag_of(self.specimen, self.rules.tag_system)
        return PoolFinding(code) if code else None

    def patients(self) -> list[str]:
        return [member.patient for member in self.members]


def refuse_addition(tube: Tube, patient: str) -> None:
    """Why ``patient`` cannot join the tube, raised; the order matters for the message."""
    if tube.closed_at is not None or tube.outcome is not None:
        raise TubeClosedError(f"pool tube {tube.barcode} is closed")
    if patient in tube.patients():
        raise AlreadyInTubeError(f"this person is already in pool tube {tube.barcode}")
    if len(tube.members) >= tube.rules.pool_size:
        raise TubeFullError(
            f"pool tube {tube.barcode} already holds {tube.rules.pool_size} people: "
            "close it and start a new tube"
        )


def with_count(pool: Resource, count: int) -> Resource:
    found = copy.deepcopy(pool)
    containers = found.setdefault("container", [{}])
    containers[0]["specimenQuantity"] = swabs(count)
    return found

"""10-in-1 pooled testing (混检, S12): scan resident ID cards into a pool tube, hand the tube to
the LIS, and turn the tube's result into a recall list or a release.

FHIR model (chosen over a Group, because a Group says nothing about a tube and the LIS result
already meets a Specimen):

- the pool tube is a Specimen (type 咽拭子) with the tube barcode as identifier and container
  identifier, under ``urn:jianhu:sid:specimen:<namespace>`` with the same id the HL7 mapping
  gives a tube with that barcode (``stable_id("spc", namespace, barcode)``), so an ORU from the
  LIS that echoes the barcode lands on the same Specimen. It has no subject (ten people);
  ``collection.collectedPeriod`` runs from opening to closing (no end: still open),
  ``receivedTime`` is the LIS receipt, ``accessionIdentifier`` the LIS registration, and
  ``container.specimenQuantity`` counts the swabs ({swab}), which the label prints;
- each person is a child Specimen: ``parent`` -> the pool, ``subject`` -> the Patient,
  ``collection.collectedDateTime`` the scan;
- workflow state is a ``meta.tag`` (system from the rules): the pool is ``pool-positive`` or
  ``pool-negative`` once resulted, a child ``retest-single-tube`` or ``released``;
- a positive tube gives one Task per person (requested, order, 单管复检, ``for`` the Patient,
  ``focus`` the pool Specimen). The Task creations are the event others subscribe to: the store
  writes ``fhir.Task.created`` to its outbox in the same transaction.

Every change of a tube writes the pool Specimen with ``if_match`` on the version it was
decided on, so two scanners adding the 10th and 11th person at once cannot both succeed: the
loser sees the conflict, re-reads, and is refused. Rules (pool size, codes, namespace) are data
in ``fhir_profiles/data/pooled-testing.json``. Nothing here logs patient data.
"""

import asyncio
import copy
import json
import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

import orjson

from fhir_profiles.identifiers import RESIDENT_ID_CARD, id_card_problem
from hub.errors import (
    PermanentError,
    ResourceGoneError,
    ResourceNotFoundError,
    RetryableError,
    VersionConflictError,
)
from hub.hl7v2.mapping.common import label, stable_id
from hub.schedule import SHANGHAI
from store.query import parse_search
from store.resources import Resource, ResourceStore, StoredVersion

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
UCUM = "http://unitsofmeasure.org"
COLLECTION_POINT = "urn:jianhu:structuredefinition:collection-point"  # 采样点
_BARCODE = re.compile(r"[0-9A-Za-z-]{4,32}")  # printable as Code 128 and typeable by hand
_WRITE_ATTEMPTS = 8  # optimistic retries when scanners race on one tube


def shanghai_now() -> datetime:
    return datetime.now(SHANGHAI)


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
    data = resources.files("fhir_profiles") / "data" / "pooled-testing.json"
    raw: dict[str, Any] = json.loads(data.read_text(encoding="utf-8"))
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


class Outcome(StrEnum):
    POSITIVE = "pool-positive"
    NEGATIVE = "pool-negative"


def instant(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(SHANGHAI).isoformat(timespec="seconds")


def check_barcode(barcode: str) -> str:
    if not _BARCODE.fullmatch(barcode):
        raise PoolingError("a tube barcode has 4 to 32 letters, digits or hyphens")
    return barcode


def new_barcode(now: datetime) -> str:
    """``HJ`` + date + 6 random digits: 14 characters that a scanner reads in one pass."""
    return f"HJ{now.astimezone(SHANGHAI):%y%m%d}{secrets.randbelow(10**6):06d}"


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
    def outcome(self) -> Outcome | None:
        code = tag_of(self.specimen, self.rules.tag_system)
        return Outcome(code) if code else None

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


# --- the service over the store ---


def _body(stored: StoredVersion) -> Resource:
    assert stored.body is not None  # reads and searches return no deletions
    resource: Resource = orjson.loads(stored.body)
    return resource


@dataclass(frozen=True)
class Recall:
    """A tube's result applied: the Tasks of a positive tube (empty for a negative one)."""

    tube: Tube
    tasks: Sequence[Resource]


class PoolingService:
    def __init__(
        self,
        store: ResourceStore,
        clock: Clock = shanghai_now,
        rules: PoolingRules | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.rules = rules or load_rules()

    # 扫码建档: find the Patient by the card, or create it

    async def find_or_create_patient(self, person: Person) -> Resource:
        card = read_id_card(person.id_card)
        query = parse_search("Patient", [("identifier", f"{RESIDENT_ID_CARD}|{card.number}")])
        page = await self.store.search(query, count=1)
        if page.items:
            # the HIS owns demographics: a found Patient is used as it is
            return _body(page.items[0])
        resource = patient_resource(card, person)
        try:  # if_match=0: create only if absent, so two desks scanning one card make one
            written = await self.store.update(resource, if_match=0)
        except VersionConflictError:
            return _body(await self.store.read("Patient", resource["id"]))
        return _body(written.version)

    # the tube

    async def open_tube(self, collection_point: str, barcode: str | None = None) -> Tube:
        """A new, empty pool tube; without a pre-printed barcode one is made up."""
        now = self.clock()
        for _ in range(_WRITE_ATTEMPTS):
            pool = pool_specimen(barcode or new_barcode(now), collection_point, now, self.rules)
            try:
                await self.store.update(pool, if_match=0)
            except VersionConflictError:
                if barcode is not None:
                    raise PoolingError(f"pool tube {barcode} already exists") from None
                continue  # a made-up barcode that was taken: draw again
            return await self.tube(pool["identifier"][0]["value"])
        raise RetryableError("no free tube barcode was found; try again")

    async def tube(self, barcode: str) -> Tube:
        """The tube and its people, as committed."""
        stored = await self._pool(barcode)
        pool = _body(stored)
        query = parse_search("Specimen", [("parent", f"Specimen/{pool['id']}")])
        page = await self.store.search(query, count=max(50, self.rules.pool_size + 1))
        members = sorted(
            (_body(item) for item in page.items),
            key=lambda member: (
                member["collection"]["collectedDateTime"],
                member["meta"]["lastUpdated"],
            ),
        )
        system = self.rules.tag_system
        return Tube(
            barcode,
            pool,
            stored.version,
            tuple(
                TubeMember(member, MemberState(tag_of(member, system) or MemberState.POOLED))
                for member in members
            ),
            self.rules,
        )

    async def _pool(self, barcode: str) -> StoredVersion:
        """By id rather than by identifier search: the id is what the HL7 mapping gives a
        tube with this barcode, so the lookup holds even after an LIS message rewrote it."""
        try:
            return await self.store.read("Specimen", pool_id(check_barcode(barcode), self.rules))
        except (ResourceNotFoundError, ResourceGoneError):
            raise TubeNotFoundError(f"no pool tube with barcode {barcode}") from None

    async def add_person(self, barcode: str, person: Person) -> Tube:
        """Scan one person into the tube: the card is checked before anything is looked up."""
        read_id_card(person.id_card)
        patient = f"Patient/{(await self.find_or_create_patient(person))['id']}"
        for attempt in range(_WRITE_ATTEMPTS):
            tube = await self.tube(barcode)
            refuse_addition(tube, patient)
            member = member_specimen(tube.specimen, patient, self.clock())
            try:
                async with self.store.transaction():
                    # the pool first: a racing scanner's conflict stops before any child is made
                    await self.store.update(
                        with_count(tube.specimen, len(tube.members) + 1), if_match=tube.version
                    )
                    await self.store.create(member, id=member["id"])
            except VersionConflictError:
                await asyncio.sleep(0.005 * (attempt + 1))  # let the other writer commit
                continue
            return await self.tube(barcode)
        raise RetryableError(f"pool tube {barcode} is busy; scan again")

    async def close_tube(self, barcode: str) -> Tube:
        """封管: no more people. Closing twice is harmless."""

        def close(tube: Tube, now: datetime) -> Resource:
            if not tube.members:
                raise EmptyTubeError(f"pool tube {barcode} holds nobody")
            return closed(tube.specimen, now)

        return await self._change(barcode, close)

    async def receive(self, barcode: str) -> Tube:
        """The LIS received the tube (签收); a tube that arrives unclosed is closed then: the
        lab holds it, so no more swabs can go in."""
        return await self._change(barcode, _received)

    async def register(self, barcode: str, accession: str, lis: str = "LIS") -> Tube:
        """The LIS registered the tube (登记/核收) under its accession number; implies receipt."""

        def registered(tube: Tube, now: datetime) -> Resource:
            pool = _received(tube, now)
            pool["accessionIdentifier"] = {
                "system": f"urn:jianhu:sid:specimen:{label(lis)}",
                "value": accession,
            }
            return pool

        return await self._change(barcode, registered)

    async def _change(self, barcode: str, change: Callable[[Tube, datetime], Resource]) -> Tube:
        for attempt in range(_WRITE_ATTEMPTS):
            tube = await self.tube(barcode)
            pool = change(tube, self.clock())
            if pool == tube.specimen:
                return tube
            try:
                await self.store.update(pool, if_match=tube.version)
            except VersionConflictError:
                await asyncio.sleep(0.005 * (attempt + 1))
                continue
            return await self.tube(barcode)
        raise RetryableError(f"pool tube {barcode} is busy; try again")

    async def record_result(self, barcode: str, positive: bool) -> Recall:
        """The tube's result: positive recalls exactly its people (a Task each, marked for
        single-tube re-testing), negative releases them; all in one transaction. The same
        result again returns the recall already made."""
        outcome = Outcome.POSITIVE if positive else Outcome.NEGATIVE
        for attempt in range(_WRITE_ATTEMPTS):
            tube = await self.tube(barcode)
            if tube.outcome is not None:
                return await self._repeated(tube, outcome)
            if not tube.members:
                raise EmptyTubeError(f"pool tube {barcode} holds nobody")
            try:
                tasks = await self._apply(tube, outcome)
            except VersionConflictError:
                await asyncio.sleep(0.005 * (attempt + 1))
                continue
            log.info("pool tube %s %s: %d recalled", barcode, outcome.value, len(tasks))
            return Recall(await self.tube(barcode), tasks)
        raise RetryableError(f"pool tube {barcode} is busy; try again")

    async def _apply(self, tube: Tube, outcome: Outcome) -> list[Resource]:
        now, system = self.clock(), self.rules.tag_system
        state = MemberState.RETEST if outcome is Outcome.POSITIVE else MemberState.RELEASED
        members = [member.specimen for member in tube.members]
        pool = tagged(closed(tube.specimen, now), system, outcome.value)
        tasks = [recall_task(pool, member, now, self.rules) for member in members]
        async with self.store.transaction():
            await self.store.update(pool, if_match=tube.version)
            for member in members:
                await self.store.update(tagged(member, system, state.value))
            if outcome is Outcome.POSITIVE:
                for task in tasks:
                    await self.store.create(task, id=task["id"])
        return tasks if outcome is Outcome.POSITIVE else []

    async def _repeated(self, tube: Tube, outcome: Outcome) -> Recall:
        if tube.outcome is not outcome:
            raise ResultConflictError(
                f"pool tube {tube.barcode} already has a different result; "
                "a correction must be made by a person"
            )
        if outcome is Outcome.NEGATIVE:
            return Recall(tube, [])
        return Recall(tube, await self.recall_list(tube.barcode))

    async def recall_list(self, barcode: str) -> list[Resource]:
        """The re-test Tasks of a tube (召回名单)."""
        stored = await self._pool(barcode)
        query = parse_search("Task", [("focus", f"Specimen/{stored.id}")])
        page = await self.store.search(query, count=max(50, self.rules.pool_size + 1))
        return [_body(item) for item in page.items]


def _received(tube: Tube, now: datetime) -> Resource:
    pool = closed(tube.specimen, now)
    pool.setdefault("receivedTime", instant(now))
    return pool

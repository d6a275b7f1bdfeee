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
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson

from fhir_profiles.identifiers import RESIDENT_ID_CARD
from hub.base.errors import (
    ResourceGoneError,
    ResourceNotFoundError,
    RetryableError,
    VersionConflictError,
)
from hub.base.tasks import KeyedLocks
from hub.hl7v2.mapping.common import label
from hub.lab.pool_tube import (
    WRITE_ATTEMPTS,
    Clock,
    EmptyTubeError,
    MemberState,
    Person,
    PoolFinding,
    PoolingError,
    PoolingRules,
    ResultConflictError,
    Tube,
    TubeMember,
    TubeNotFoundError,
    check_barcode,
    closed,
    instant,
    load_rules,
    member_specimen,
    new_barcode,
    patient_resource,
    pool_id,
    pool_specimen,
    read_id_card,
    recall_task,
    refuse_addition,
    shanghai_now,
    tag_of,
    tagged,
    with_count,
)
from store.plan import Write, WriteMode
from store.query import parse_search
from store.resources import Resource, ResourceStore, StoredVersion

log = logging.getLogger(__name__)


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
        # one change of a tube at a time in this process: scanners at one desk queue instead of
        # racing; another process's change is still caught by the version check and retried
        self._one_at_a_time = KeyedLocks()

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
        for _ in range(WRITE_ATTEMPTS):
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
        async with self._one_at_a_time(barcode):
            return await self._add_member(barcode, patient)

    async def _add_member(self, barcode: str, patient: str) -> Tube:
        for attempt in range(WRITE_ATTEMPTS):
            tube = await self.tube(barcode)
            refuse_addition(tube, patient)
            member = member_specimen(tube.specimen, patient, self.clock())
            counted = with_count(tube.specimen, len(tube.members) + 1)
            try:  # the pool first: a racing scanner's conflict stops before any child is made
                await self.store.apply(
                    [
                        Write.of(WriteMode.REPLACE, counted, if_match=tube.version),
                        Write.of(WriteMode.CREATE, member),
                    ]
                )
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
        async with self._one_at_a_time(barcode):
            return await self._change_once(barcode, change)

    async def _change_once(
        self, barcode: str, change: Callable[[Tube, datetime], Resource]
    ) -> Tube:
        for attempt in range(WRITE_ATTEMPTS):
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
        outcome = PoolFinding.POSITIVE if positive else PoolFinding.NEGATIVE
        async with self._one_at_a_time(barcode):
            return await self._record_result(barcode, outcome)

    async def _record_result(self, barcode: str, outcome: PoolFinding) -> Recall:
        for attempt in range(WRITE_ATTEMPTS):
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

    async def _apply(self, tube: Tube, outcome: PoolFinding) -> list[Resource]:
        now, system = self.clock(), self.rules.tag_system
        state = MemberState.RETEST if outcome is PoolFinding.POSITIVE else MemberState.RELEASED
        members = [member.specimen for member in tube.members]
        pool = tagged(closed(tube.specimen, now), system, outcome.value)
        tasks = [recall_task(pool, member, now, self.rules) for member in members]
        writes = [Write.of(WriteMode.REPLACE, pool, if_match=tube.version)]
        writes += [Write.of(WriteMode.REPLACE, tagged(m, system, state.value)) for m in members]
        if outcome is PoolFinding.POSITIVE:
            writes += [Write.of(WriteMode.CREATE, task) for task in tasks]
        await self.store.apply(writes)
        return tasks if outcome is PoolFinding.POSITIVE else []

    async def _repeated(self, tube: Tube, outcome: PoolFinding) -> Recall:
        if tube.outcome is not outcome:
            raise ResultConflictError(
                f"pool tube {tube.barcode} already has a different result; "
                "a correction must be made by a person"
            )
        if outcome is PoolFinding.NEGATIVE:
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

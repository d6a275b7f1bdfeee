"""What the LIS's HL7 does to pool tubes (混检) by itself: a result on a pool tube recalls or
releases its people, an SSU^U03 receives and registers the tube, as the pooling API would.
The lab service hands it every result and every container status it reads."""

import logging
from collections.abc import Sequence

from hub.base.json import Json
from hub.base.logs import log_event
from hub.lab.lifecycle import CANCELLED, Stage
from hub.lab.lifecycle_hl7 import ContainerStatus
from hub.lab.pool_results import Reading, pool_result, result_rules
from hub.lab.pool_tube import PoolingError
from hub.lab.pooling import PoolingService
from hub.lab.report_results import lists_result

log = logging.getLogger(__name__)


class PoolFeed:
    def __init__(self, pooling: PoolingService) -> None:
        self._pooling = pooling

    async def result(self, observation: Json, context: Sequence[Json]) -> None:
        """A result on a pool tube recalls or releases its people at once (混检)."""
        specimen = _tube_of(observation, context)
        found = pool_result(observation, specimen, self._pooling.rules, result_rules())
        if found is None:
            return
        if found.reading is Reading.UNREADABLE:
            log_event(log, "pool_result_unreadable", logging.WARNING, tube=found.barcode)
            return
        try:
            recall = await self._pooling.record_result(
                found.barcode, found.reading is Reading.POSITIVE
            )
        except PoolingError as exc:  # a different result already, or an empty tube: a person
            log_event(
                log, "pool_result_refused", logging.WARNING, tube=found.barcode, error=str(exc)
            )
            return
        log_event(
            log,
            "pool_resulted",
            tube=found.barcode,
            reading=found.reading.value,
            recalled=len(recall.tasks),
        )

    async def status(self, status: ContainerStatus, lis: str) -> None:
        """签收 (received) or 登记 (registered, with SAC-2 the accession number) of a pool tube
        over HL7, as the pooling API's receive and register do."""
        if status.owner != self._pooling.rules.barcode_namespace:
            return  # a patient's own tube
        stage = Stage.named(status.stage) if status.stage != CANCELLED else None
        if stage is None or stage < Stage.RECEIVED:
            return
        try:
            tube = await self._pooling.tube(status.barcode)
            if stage >= Stage.REGISTERED and status.accession:
                if tube.accession != status.accession:
                    await self._pooling.register(status.barcode, status.accession, lis)
            elif tube.received_at is None:
                await self._pooling.receive(status.barcode)
        except PoolingError as exc:  # not a tube of the desk, or already resulted: a person
            log_event(
                log, "pool_status_refused", logging.WARNING, tube=status.barcode, error=str(exc)
            )


def _tube_of(observation: Json, context: Sequence[Json]) -> Json | None:
    """The result's tube: its own ``specimen``, else the first of the report that lists it."""
    by_ref = {f"{r['resourceType']}/{r['id']}": r for r in context}
    tube = (observation.get("specimen") or {}).get("reference")
    if tube is None:
        mine = f"Observation/{observation['id']}"
        for report in (r for r in context if r["resourceType"] == "DiagnosticReport"):
            if lists_result(report, mine):
                tube = next((s.get("reference") for s in report.get("specimen", [])), None)
                break
    return by_ref.get(str(tube))

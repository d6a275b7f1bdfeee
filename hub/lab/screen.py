"""What the lab's big screen reads: the stage columns, the TAT alerts and the critical values
as JSON, the KPIs and the statistics. Patients appear masked (张*), with ward and bed, and
never by reference, so no route and no stream can forget the masking."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from hub.base.hospital_time import HOSPITAL
from hub.base.json import Json
from hub.base.masking import mask_name
from hub.lab.critical_alerts import AlertState, local_time
from hub.lab.critical_desk import CriticalValueDesk
from hub.lab.lifecycle import Stage
from hub.lab.tat import Alert, AlertChange, AlertEngine
from hub.lab.tat_statistics import tat_statistics

Clock = Callable[[], datetime]

KPI_RULE = "report-overdue"  # 签收 → 报告, the lab's own TAT, what the wall shows

# The screen's columns: where a tube waits (待…), by the furthest stage it has reached.
COLUMNS: tuple[tuple[str, str, tuple[Stage, ...]], ...] = (
    ("collect", "待采集", (Stage.ORDERED,)),
    ("receive", "待接收", (Stage.COLLECTED,)),
    ("register", "待登记", (Stage.RECEIVED,)),
    ("test", "检测中", (Stage.REGISTERED, Stage.IN_TEST)),
    ("review", "待审核", (Stage.PRELIMINARY, Stage.FINAL)),
    ("report", "待发布", (Stage.REVIEWED, Stage.REPORTED, Stage.PRINTED)),
)
_COLUMN_OF = {stage: key for key, _, stages in COLUMNS for stage in stages}


@dataclass(frozen=True)
class Shown:
    """What the screen shows beside a critical value, from the result's patient and visit."""

    patient: str  # masked: 张*
    ward: str
    bed: str


class ScreenView:
    def __init__(self, engine: AlertEngine, desk: CriticalValueDesk, clock: Clock) -> None:
        self.engine, self.desk, self._clock = engine, desk, clock
        self._shown: dict[str, Shown] = {}  # Observation reference -> what the screen shows

    def remember(self, observation: Json, context: Sequence[Json]) -> Json | None:
        """What the screen shows beside a result (masked patient, ward, bed), kept while its
        alert is open; returns the Patient, which the critical limits read (sex, age)."""
        by_ref = {f"{r['resourceType']}/{r['id']}": r for r in context}
        patient = by_ref.get(str((observation.get("subject") or {}).get("reference")))
        visit = by_ref.get(str((observation.get("encounter") or {}).get("reference")), {})
        places = _places(visit)
        ward = places.get("wa") or (visit.get("serviceType") or {}).get("text") or ""
        self._shown[f"Observation/{observation['id']}"] = Shown(
            patient=_masked_name(patient), ward=str(ward), bed=places.get("bd", "")
        )
        return patient

    def forget(self, observation: str) -> None:
        """``Observation/<id>`` has no alert on the screen any more."""
        self._shown.pop(observation, None)

    def overview(self) -> Json:
        return {
            "now": local_time(self._clock()),
            "stages": self.stages(),
            "alerts": [self.tat_json(alert) for alert in self.engine.alerts()],
            "critical": [
                self.critical_json(alert.as_json())
                for alert in self.desk.open_alerts()
                if alert.state is AlertState.OPEN
            ],
            "kpi": self.kpi(),
        }

    def stages(self) -> list[Json]:
        counts = self.engine.counts_by_stage()
        return [
            {"key": key, "label": label, "count": sum(counts[s] for s in stages)}
            for key, label, stages in COLUMNS
        ]

    def tat_json(self, alert: Alert | AlertChange) -> Json:
        if isinstance(alert, AlertChange):
            alert = alert.alert
        track = self.engine.track(alert.specimen)
        stage = track.stage if track is not None and track.stage is not None else alert.stage
        ack = alert.acknowledgement
        return {
            "id": alert.id,
            "rule": alert.rule,
            "label": alert.label,
            "barcode": alert.barcode,
            "department": alert.department,
            "test_group": alert.test_group,
            "priority": alert.priority.value,
            "source": alert.source.value,
            "column": _COLUMN_OF.get(stage, "receive") if stage is not None else "collect",
            "due": local_time(alert.due),
            "raised": local_time(alert.raised_at),
            "acknowledgement": None
            if ack is None
            else {"by": ack.by, "at": local_time(ack.at), "note": ack.note},
            "cleared": alert.cleared_at is not None,
        }

    def critical_json(self, alert: Json) -> Json:
        """The desk's alert without references, with the masked patient beside it."""
        context = self._shown.get(alert["observation"], Shown("", "", ""))
        ack = alert["acknowledgement"]
        return {
            "id": alert["id"],
            "state": alert["state"],
            "level": alert["level"],
            "critical": alert["critical"],
            "text": alert["text"],
            "findings": [
                {"name": f["name"], "value": f["value"], "limit": f["limit"], "kind": f["kind"]}
                for f in alert["findings"]
            ],
            "raised": alert["raised"],
            "due": alert["due"],
            "patient": context.patient,
            "ward": context.ward,
            "bed": context.bed,
            "acknowledgement": None
            if ack is None
            else {
                "by": ack["by"]["name"],
                "clinician": ack["clinician"]["name"],
                "at": ack["at"],
                "late": ack["late"],
            },
        }

    def kpi(self) -> Json:
        """Today's lab TAT (签收 → 报告) over the tubes finished today, and what is open now."""
        rule = self.engine.rules.get(KPI_RULE)
        today = self._clock().astimezone(HOSPITAL).date()
        # 今日报告: reported today, whenever the tube was received
        done_today = [
            track
            for track in self.engine.completed.values()
            if (end := track.time_of(rule.target)) is not None
            and end.astimezone(HOSPITAL).date() == today
        ]
        summary = tat_statistics(done_today, rule, by=()).get(())
        open_alerts = self.engine.alerts()
        return {
            "in_flight": self.engine.in_flight(),
            "overdue": sum(a.acknowledgement is None for a in open_alerts),
            "overdue_acknowledged": sum(a.acknowledgement is not None for a in open_alerts),
            "critical_open": sum(a.state is AlertState.OPEN for a in self.desk.open_alerts()),
            "reported_today": summary.count if summary else 0,
            "median_minutes": round(summary.median_minutes, 1) if summary else None,
            "p90_minutes": round(summary.p90_minutes, 1) if summary else None,
            "within_target": None
            if summary is None or summary.within_target is None
            else round(summary.within_target * 100, 1),
            "rule": rule.label,
        }

    def statistics(self, rule_id: str = KPI_RULE) -> list[Json]:
        """TAT per department, test group and day (median, p90, share within target) over the
        tubes finished and still remembered by this process."""
        rule = self.engine.rules.get(rule_id)
        found = tat_statistics(self.engine.completed.values(), rule)
        return [
            {
                "department": department,
                "test_group": test_group,
                "day": day,
                "count": summary.count,
                "median_minutes": round(summary.median_minutes, 1),
                "p90_minutes": round(summary.p90_minutes, 1),
                "within_target": None
                if summary.within_target is None
                else round(summary.within_target * 100, 1),
                "rule": rule.label,
            }
            for (department, test_group, day), summary in found.items()
        ]


def _masked_name(patient: Json | None) -> str:
    names = (patient or {}).get("name") or []
    for name in names:
        text = name.get("text") or (name.get("family", "") + "".join(name.get("given", [])))
        if text:
            return mask_name(str(text))
    return ""


def _places(visit: Json) -> dict[str, str]:
    """The visit's locations by physical type (wa 病区, ro 房间, bd 床位) as the ADT mapping
    gives them from PV1-3."""
    found: dict[str, str] = {}
    for entry in visit.get("location") or []:
        kinds = [c.get("code") for c in (entry.get("physicalType") or {}).get("coding", [])]
        display = (entry.get("location") or {}).get("display")
        for kind in kinds:
            if kind and display:
                found.setdefault(str(kind), str(display))
    return found

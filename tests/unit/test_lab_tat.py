"""TAT alerts and statistics with an injected clock: each shipped rule raises at its deadline and
clears when the stage arrives, acknowledgement, change events, statistics on a known set."""

import asyncio
from datetime import datetime, timedelta

import pytest

from hub.base.hospital_time import HOSPITAL
from hub.lab.lifecycle import LifecycleEvent, Priority, Source, SpecimenTrack, Stage, TrackDetails
from hub.lab.tat import AlertChange, AlertEngine, AlertError, ChangeKind
from hub.lab.tat_rules import TatRules, tat_rules
from hub.lab.tat_statistics import p90, tat_statistics

T0 = datetime(2026, 3, 5, 8, 0, tzinfo=HOSPITAL)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def to(self, minutes: float) -> datetime:
        self.now = T0 + timedelta(minutes=minutes)
        return self.now


def event(
    stage: Stage,
    minutes: float,
    tube: str = "tube-1",
    priority: Priority = Priority.ROUTINE,
    source: Source = Source.OUTPATIENT,
    test_group: str = "生化",
    cancelled: bool = False,
) -> LifecycleEvent:
    details = TrackDetails(
        barcode=f"B-{tube}", test_group=test_group, priority=priority, source=source
    )
    at = T0 + timedelta(minutes=minutes)
    return LifecycleEvent(stage, at, "test", specimen=tube, details=details, cancelled=cancelled)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(clock: Clock) -> AlertEngine:
    return AlertEngine(now=clock)


def fed(engine: AlertEngine, clock: Clock, minutes: float, *events: LifecycleEvent) -> None:
    clock.to(minutes)
    engine.apply_all(events)
    engine.tick()


# (rule, stage that starts it, the stage it waits for, routine outpatient minutes, stat minutes)
SHIPPED = [
    ("not-received", Stage.COLLECTED, Stage.RECEIVED, 30, 15),
    ("not-registered", Stage.RECEIVED, Stage.REGISTERED, 15, 5),
    ("not-reviewed", Stage.FINAL, Stage.REVIEWED, 60, 10),
]


@pytest.mark.parametrize(("rule", "start", "target", "routine", "stat"), SHIPPED)
@pytest.mark.parametrize("priority", [Priority.ROUTINE, Priority.STAT])
def test_each_rule_raises_at_its_deadline_and_clears_on_the_stage(
    engine: AlertEngine,
    clock: Clock,
    rule: str,
    start: Stage,
    target: Stage,
    routine: int,
    stat: int,
    priority: Priority,
) -> None:
    limit = stat if priority is Priority.STAT else routine
    fed(engine, clock, 0, event(start, 0, priority=priority))
    assert engine.tick(clock.to(limit - 0.5)) == 0
    assert engine.tick(clock.to(limit)) == 1
    (alert,) = [a for a in engine.alerts() if a.rule == rule]
    assert (alert.due, alert.raised_at, alert.stage) == (T0 + timedelta(minutes=limit),) * 2 + (
        start,
    )
    assert alert.barcode == "B-tube-1"
    fed(engine, clock, limit + 3, event(target, limit + 2, priority=priority))
    assert rule not in {a.rule for a in engine.alerts()}


def test_stage_in_time_raises_nothing(engine: AlertEngine, clock: Clock) -> None:
    fed(engine, clock, 0, event(Stage.COLLECTED, 0))
    fed(engine, clock, 20, event(Stage.RECEIVED, 20))
    assert engine.tick(clock.to(30)) == 0
    assert engine.alerts() == []


def test_thresholds_by_source_and_test_group() -> None:
    rules = tat_rules()
    received = rules.get("not-received")
    assert received.limit_for("生化", Priority.ROUTINE, Source.INPATIENT) == timedelta(minutes=60)
    assert received.limit_for("生化", Priority.ROUTINE, Source.EMERGENCY) == timedelta(minutes=15)
    overdue = rules.get("report-overdue")
    assert overdue.limit_for("血常规", Priority.STAT, Source.OUTPATIENT) == timedelta(minutes=30)
    assert overdue.limit_for("微生物", Priority.ROUTINE, Source.INPATIENT) is None  # off


def test_an_event_that_arrives_late_raises_at_once(engine: AlertEngine, clock: Clock) -> None:
    clock.to(45)
    engine.apply(event(Stage.COLLECTED, 0))  # the HIS sends the collection 45 minutes late
    assert [a.rule for a in engine.alerts()] == ["not-received"]


def test_out_of_order_stage_does_not_reopen_a_rule(engine: AlertEngine, clock: Clock) -> None:
    fed(engine, clock, 0, event(Stage.REGISTERED, 0))
    fed(engine, clock, 1, event(Stage.COLLECTED, -60))  # late and long ago
    assert engine.tick(clock.to(120)) == 0
    assert "not-received" not in {a.rule for a in engine.alerts()}
    track = engine.track("tube-1")
    assert track is not None
    assert track.stage is Stage.REGISTERED


def test_acknowledgement_names_a_person_and_keeps_the_alert_open(
    engine: AlertEngine, clock: Clock
) -> None:
    changes: list[AlertChange] = []
    engine.on_change(changes.append)
    fed(engine, clock, 0, event(Stage.RECEIVED, 0))
    engine.tick(clock.to(16))
    (alert,) = engine.alerts()
    clock.to(18)
    engine.acknowledge(alert.id, "俞海峰", "电话通知护士站")
    (still,) = engine.alerts()
    assert still.acknowledgement is not None
    assert (still.acknowledgement.by, still.acknowledgement.at) == ("俞海峰", clock.now)
    assert still.acknowledgement.note == "电话通知护士站"
    with pytest.raises(AlertError, match="already"):
        engine.acknowledge(alert.id, "另一人")
    with pytest.raises(AlertError, match="names"):
        engine.acknowledge(alert.id, "  ")
    fed(engine, clock, 20, event(Stage.REGISTERED, 20))
    with pytest.raises(AlertError, match="no open alert"):
        engine.acknowledge(alert.id, "俞海峰")
    assert [c.kind for c in changes] == [
        ChangeKind.RAISED,
        ChangeKind.ACKNOWLEDGED,
        ChangeKind.CLEARED,
    ]
    assert changes[0].alert.acknowledgement is None  # a copy as it stood then
    assert changes[2].alert.cleared_because == "stage"


def test_subscribers_get_changes_in_their_own_queue(engine: AlertEngine, clock: Clock) -> None:
    async def scenario() -> list[ChangeKind]:
        screen = engine.subscribe()
        gone = engine.subscribe()
        engine.unsubscribe(gone)
        fed(engine, clock, 0, event(Stage.COLLECTED, 0))
        engine.tick(clock.to(31))
        fed(engine, clock, 32, event(Stage.RECEIVED, 32))
        assert gone.empty()
        return [(await screen.get()).kind for _ in range(screen.qsize())]

    assert asyncio.run(scenario()) == [ChangeKind.RAISED, ChangeKind.CLEARED]


def test_a_slow_screen_loses_its_oldest_changes(clock: Clock) -> None:
    engine = AlertEngine(now=clock, queue_size=1)
    screen = engine.subscribe()
    fed(engine, clock, 0, event(Stage.COLLECTED, 0))
    engine.tick(clock.to(31))
    fed(engine, clock, 32, event(Stage.RECEIVED, 32))
    assert engine.dropped_changes == 1
    assert screen.get_nowait().kind is ChangeKind.CLEARED


def test_cancelled_tube_clears_its_alerts_and_leaves(engine: AlertEngine, clock: Clock) -> None:
    fed(engine, clock, 0, event(Stage.COLLECTED, 0))
    engine.tick(clock.to(31))
    fed(engine, clock, 40, event(Stage.ORDERED, 40, cancelled=True))
    assert engine.alerts() == []
    assert engine.in_flight() == 0


def test_reported_tube_completes_and_counts_by_stage(engine: AlertEngine, clock: Clock) -> None:
    fed(engine, clock, 0, event(Stage.RECEIVED, 0), event(Stage.RECEIVED, 0, tube="tube-2"))
    assert engine.counts_by_stage()[Stage.RECEIVED] == 2
    fed(engine, clock, 50, *(event(s, 50) for s in (Stage.REGISTERED, Stage.FINAL)))
    fed(engine, clock, 55, event(Stage.REVIEWED, 55), event(Stage.REPORTED, 56))
    assert engine.in_flight() == 1
    assert list(engine.completed) == ["tube-1"]
    assert engine.counts_by_stage()[Stage.RECEIVED] == 1
    assert engine.counts_by_stage()[Stage.REPORTED] == 0
    fed(engine, clock, 90, event(Stage.PRINTED, 90))  # after the report: updates, stays done
    assert engine.in_flight() == 1
    assert engine.completed["tube-1"].time_of(Stage.PRINTED) == T0 + timedelta(minutes=90)


def test_an_order_event_reaches_the_tubes_of_that_order(engine: AlertEngine, clock: Clock) -> None:
    seen = LifecycleEvent(
        Stage.RECEIVED, T0, "test", specimen="tube-1", details=TrackDetails(request="req-1")
    )
    by_order = LifecycleEvent(Stage.REGISTERED, T0 + timedelta(minutes=3), "ORL", request="req-1")
    fed(engine, clock, 0, seen)
    fed(engine, clock, 3, by_order, LifecycleEvent(Stage.REGISTERED, T0, "ORL", request="req-9"))
    track = engine.track("tube-1")
    assert track is not None
    assert track.stage is Stage.REGISTERED
    assert engine.unmatched_events == 1


# --- statistics ---


def done(tube: str, received: int, reported: int, department: str, day: int = 5) -> SpecimenTrack:
    start = datetime(2026, 3, day, 9, 0, tzinfo=HOSPITAL)
    track = SpecimenTrack(tube, department=department, test_group="生化")
    for stage, minutes in ((Stage.RECEIVED, received), (Stage.REPORTED, reported)):
        track.apply(LifecycleEvent(stage, start + timedelta(minutes=minutes), "t", specimen=tube))
    return track


def test_statistics_per_department_test_group_and_day() -> None:
    spans = [10, 20, 30, 40, 50, 60, 70, 80, 90, 300]  # 生化 routine target: 240 minutes
    tracks = [done(f"a{n}", 0, m, "儿科") for n, m in enumerate(spans)]
    tracks += [done("b1", 0, 100, "急诊科"), done("b2", 0, 30, "儿科", day=6)]
    tracks.append(SpecimenTrack("unfinished", department="儿科"))
    stats = tat_statistics(tracks, tat_rules().get("report-overdue"))
    pediatrics = stats[("儿科", "生化", "2026-03-05")]
    assert pediatrics.count == 10
    assert pediatrics.median_minutes == 55
    assert pediatrics.p90_minutes == 90
    assert pediatrics.within_target == 0.9
    assert stats[("急诊科", "生化", "2026-03-05")].count == 1
    assert stats[("儿科", "生化", "2026-03-06")].median_minutes == 30
    assert len(stats) == 3


def test_p90_is_a_nearest_rank() -> None:
    assert p90([5]) == 5
    assert p90(list(range(1, 21))) == 18


def test_rules_file_is_consistent() -> None:
    rules = TatRules.from_json(
        {"rules": [{"id": "x", "from": "received", "to": "registered", "minutes": 5}]}
    )
    assert rules.complete_at is Stage.REPORTED
    with pytest.raises(ValueError, match="after"):
        TatRules.from_json({"rules": [{"id": "x", "from": "final", "to": "received"}]})


# --- size ---


def test_fifty_thousand_tubes_in_flight(clock: Clock) -> None:
    engine = AlertEngine(now=clock)
    for n in range(50_000):
        engine.apply(event(Stage.COLLECTED, n / 1000, tube=f"t{n}"))
    assert engine.in_flight() == 50_000
    fed(engine, clock, 20, *(event(Stage.RECEIVED, 20, tube=f"t{n}") for n in range(0, 50_000, 2)))
    # odd tubes were never received: due 30 minutes after collection (n/1000 minutes)
    assert engine.tick(clock.to(31)) == 500
    # then the rest of them, and every even tube is waiting for its registration (15 minutes)
    assert engine.tick(clock.to(90)) == 24_500 + 25_000
    assert len(engine.alerts()) == 50_000
    assert engine.counts_by_stage()[Stage.RECEIVED] == 25_000

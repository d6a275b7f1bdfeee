"""TAT statistics (median, p90, share within target) of one rule's span, per department,
test group and day, over finished tubes."""

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hub.base.hospital_time import HOSPITAL
from hub.lab.lifecycle import SpecimenTrack, Stage
from hub.lab.tat_rules import TatRule


@dataclass(frozen=True)
class TatSummary:
    count: int
    median_minutes: float
    p90_minutes: float
    targeted: int  # tubes that have a target under the rule
    within_target: float | None  # share of ``targeted`` done in time; None when none has one


GROUPINGS = ("department", "test_group", "day")
GroupKey = tuple[str | None, ...]


def _end(track: SpecimenTrack, target: Stage) -> datetime | None:
    """When the target stage was reached; a feed that skipped it is bounded by the next
    stage timed after it."""
    if (exact := track.time_of(target)) is not None:
        return exact
    later = [t for s, t in track.times.items() if s > target]
    return min(later) if later else None


def _group(track: SpecimenTrack, start: datetime, by: Sequence[str]) -> GroupKey:
    values = {
        "department": track.department,
        "test_group": track.test_group,
        "day": start.astimezone(HOSPITAL).date().isoformat(),  # the hospital's calendar day
        "priority": track.priority.value,
        "source": track.source.value,
    }
    return tuple(values[name] for name in by)


def p90(values: Sequence[float]) -> float:
    """Nearest rank: the smallest value at or above 90 % of the tubes, a time one of them
    actually took (what lab quality reports quote)."""
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


def tat_statistics(
    tracks: Iterable[SpecimenTrack], rule: TatRule, by: Sequence[str] = GROUPINGS
) -> dict[GroupKey, TatSummary]:
    """Median, p90 and the share within target of one rule's span (e.g. received -> reported,
    the lab's own TAT), per department, test group and day of the span's start."""
    spans: dict[GroupKey, list[tuple[float, timedelta | None]]] = {}
    for track in tracks:
        start, end = track.started(rule.start, rule.target), _end(track, rule.target)
        if start is None or end is None or end < start:
            continue  # not both ends known, or clocks that disagree: no honest duration
        limit = rule.limit_for(track.test_group, track.priority, track.source)
        minutes = (end - start).total_seconds() / 60
        spans.setdefault(_group(track, start, by), []).append((minutes, limit))
    return {key: _summary(values) for key, values in sorted(spans.items(), key=_sort_key)}


def _sort_key(item: tuple[GroupKey, Any]) -> tuple[str, ...]:
    return tuple(part or "" for part in item[0])


def _summary(values: list[tuple[float, timedelta | None]]) -> TatSummary:
    minutes = [m for m, _ in values]
    targeted = [(m, limit) for m, limit in values if limit is not None]
    within = sum(m <= limit.total_seconds() / 60 for m, limit in targeted)
    return TatSummary(
        count=len(minutes),
        median_minutes=statistics.median(minutes),
        p90_minutes=p90(minutes),
        targeted=len(targeted),
        within_target=within / len(targeted) if targeted else None,
    )

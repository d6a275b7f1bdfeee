"""Turnaround-time rules (``fhir_profiles/data/lab-tat-rules.json``): each watches one span
of the lifecycle (collected -> received within 30 minutes, ...), with thresholds by test
group, priority and source; the most specific threshold wins and ``null`` turns a rule off."""

from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from hub.base.json import Json
from hub.base.site_files import read_json
from hub.lab.lifecycle import Priority, Source, Stage


@dataclass(frozen=True)
class Threshold:
    """Minutes for the tubes that match every criterion given (None matches any)."""

    minutes: int | None
    test_group: str | None = None
    priority: Priority | None = None
    source: Source | None = None

    def matches(self, test_group: str | None, priority: Priority, source: Source) -> bool:
        return (
            self.test_group in (None, test_group)
            and self.priority in (None, priority)
            and self.source in (None, source)
        )

    @property
    def specificity(self) -> int:
        return sum(c is not None for c in (self.test_group, self.priority, self.source))


@dataclass(frozen=True)
class TatRule:
    id: str
    label: str  # shown on the screen: 采集后未签收
    start: Stage
    target: Stage
    minutes: int | None
    thresholds: tuple[Threshold, ...] = ()

    def limit_for(
        self, test_group: str | None, priority: Priority, source: Source
    ) -> timedelta | None:
        """The most specific matching threshold, the first listed among equals; else the
        rule's own minutes. None: the rule does not apply to such a tube."""
        best: Threshold | None = None
        for threshold in self.thresholds:
            if threshold.matches(test_group, priority, source) and (
                best is None or threshold.specificity > best.specificity
            ):
                best = threshold
        minutes = best.minutes if best is not None else self.minutes
        return None if minutes is None else timedelta(minutes=minutes)

    @classmethod
    def from_json(cls, data: Json) -> "TatRule":
        start, target = Stage.named(data["from"]), Stage.named(data["to"])
        if target <= start:
            raise ValueError(f"TAT rule {data['id']}: 'to' must come after 'from'")
        return cls(
            id=data["id"],
            label=str(data.get("label", data["id"])),
            start=start,
            target=target,
            minutes=data.get("minutes"),
            thresholds=tuple(
                Threshold(
                    minutes=t.get("minutes"),
                    test_group=t.get("test_group"),
                    priority=Priority(t["priority"]) if "priority" in t else None,
                    source=Source(t["source"]) if "source" in t else None,
                )
                for t in data.get("thresholds", [])
            ),
        )


@dataclass(frozen=True)
class TatRules:
    rules: tuple[TatRule, ...]
    complete_at: Stage = Stage.REPORTED

    @classmethod
    def from_json(cls, data: Json) -> "TatRules":
        rules = tuple(TatRule.from_json(r) for r in data["rules"])
        if len({r.id for r in rules}) != len(rules):
            raise ValueError("TAT rule ids must be unique")
        return cls(rules, Stage.named(data.get("complete_at", "reported")))

    def get(self, rule_id: str) -> TatRule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(f"no TAT rule {rule_id!r}")


@cache
def tat_rules() -> TatRules:
    return TatRules.from_json(read_json("fhir_profiles", "data/lab-tat-rules.json"))

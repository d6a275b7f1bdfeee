"""The LIS's result on a pool tube (混检): an Observation whose Specimen is a pool tube is read
as positive or negative, by the codes and words of ``fhir_profiles/data/pooled-testing.json``
(``result``), and recorded on the tube, which recalls or releases its people.

Only a final result of a configured pooled test counts. A value the rules cannot read (an
invalid run, a free text the lab did not agree on) is left to a person at the pooling API:
it is returned as unreadable, never guessed."""

from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from hub.base.json import Json
from hub.base.site_files import read_json
from hub.lab.pool_tube import PoolingRules, pool_id


class Reading(StrEnum):
    POSITIVE = "positive"
    NEGATIVE = "negative"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class ResultRules:
    tests: frozenset[str]  # codes of the pooled tests (LOINC, the LIS's own)
    final_statuses: frozenset[str]
    positive: frozenset[str]  # interpretation codes, coded values and words that mean positive
    negative: frozenset[str]


@cache
def result_rules() -> ResultRules:
    return parse_result_rules(read_json("fhir_profiles", "data/pooled-testing.json")["result"])


def parse_result_rules(raw: Json) -> ResultRules:
    return ResultRules(
        tests=frozenset(raw["tests"]),
        final_statuses=frozenset(raw["final_statuses"]),
        positive=frozenset(raw["positive"]),
        negative=frozenset(raw["negative"]),
    )


@dataclass(frozen=True)
class PoolResult:
    barcode: str
    reading: Reading


def pool_result(
    observation: Json, specimen: Json | None, pooling: PoolingRules, rules: ResultRules
) -> PoolResult | None:
    """The tube result this Observation gives, or None when it is not one (another tube,
    another test, not final yet)."""
    if specimen is None or observation.get("status") not in rules.final_statuses:
        return None
    barcode = _pool_barcode(specimen, pooling)
    if barcode is None or not (_codes(observation.get("code")) & rules.tests):
        return None
    return PoolResult(barcode, _reading(observation, rules))


def _pool_barcode(specimen: Json, pooling: PoolingRules) -> str | None:
    """The barcode of a pool tube: its identifier under the pool namespace, and the id the
    pooling service gives that barcode (so a person's own tube never counts)."""
    for identifier in specimen.get("identifier") or []:
        if identifier.get("system") == pooling.barcode_system and identifier.get("value"):
            barcode = str(identifier["value"])
            if specimen.get("id") == pool_id(barcode, pooling):
                return barcode
    return None


def _codes(concept: Json | None) -> set[str]:
    return {str(c["code"]) for c in (concept or {}).get("coding", []) if c.get("code")}


def _words(observation: Json) -> set[str]:
    """Everything the result says: interpretation codes, the coded or written value."""
    found: set[str] = set()
    for concept in observation.get("interpretation") or []:
        found |= _codes(concept)
    value = observation.get("valueCodeableConcept")
    if value:
        found |= _codes(value)
        if value.get("text"):
            found.add(str(value["text"]).strip())
    if observation.get("valueString"):
        found.add(str(observation["valueString"]).strip())
    return found


def _reading(observation: Json, rules: ResultRules) -> Reading:
    words = _words(observation)
    positive, negative = bool(words & rules.positive), bool(words & rules.negative)
    if positive == negative:  # neither, or both: a person reads it
        return Reading.UNREADABLE
    return Reading.POSITIVE if positive else Reading.NEGATIVE

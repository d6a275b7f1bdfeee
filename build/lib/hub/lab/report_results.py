"""Whether a report lists a result, in constant time however many results it has: the lab
asks it for every result event, and a report of 50,000 results made a linear scan per event
cost the message its size squared."""

from collections import OrderedDict
from typing import Any

_KEPT = 64
_sets: OrderedDict[tuple[str, str, int], frozenset[str]] = OrderedDict()


def lists_result(report: dict[str, Any], reference: str) -> bool:
    results = report.get("result") or []
    version = str((report.get("meta") or {}).get("versionId", ""))
    key = (str(report.get("id")), version, len(results))
    found = _sets.get(key)
    if found is None:
        found = frozenset(
            item["reference"]
            for item in results
            if isinstance(item, dict) and isinstance(item.get("reference"), str)
        )
        _sets[key] = found
        while len(_sets) > _KEPT:
            _sets.popitem(last=False)
    else:
        _sets.move_to_end(key)
    return reference in found

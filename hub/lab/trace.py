"""The lab's part of ``jianhu trace``: the critical-value alerts a message's results raised or
changed, each with every step of it (raised, escalated, acknowledged with the read-back,
closed), read from the desk's audit trail so a trace works without the lab running."""

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from hub.base.json import Json
from hub.lab.critical_alerts import STEP_LABELS, Step
from hub.trace import Traced
from store.resources import AuditFilter, ResourceStore

# The audit events read per result: its alert steps and the reads of it by the FHIR API.
PER_RESULT = 200
_STARTS = (Step.RAISED.value, Step.UPDATED.value)  # the steps a new version of a result takes
_LABELS = {step.value: label for step, label in STEP_LABELS.items()}


def alert_tracer(resources: ResourceStore) -> Callable[[Traced], Awaitable[list[Json]]]:
    async def alerts(traced: Traced) -> list[Json]:
        found: dict[str, list[Json]] = {}
        results = {v.id: str(v.version) for v in traced.versions if v.type == "Observation"}
        for id_, version in results.items():
            steps = await _critical_steps(resources, f"Observation/{id_}")
            raised_here = {
                s["alert"] for s in steps if s["step"] in _STARTS and s["version"] in (version, "")
            }
            for step in steps:
                if step["alert"] in raised_here:
                    found.setdefault(step["alert"], []).append(step)
        return [_alert(alert, steps) for alert, steps in found.items()]

    return alerts


async def _critical_steps(resources: ResourceStore, observation: str) -> list[Json]:
    filters = [AuditFilter("entity", "=", observation)]
    page = await resources.audit.search(filters, PER_RESULT, None, newest_first=False)
    steps = []
    for stored in page.items:
        event = _parsed(stored.body)
        if (event.get("type") or {}).get("code") != "critical-value":
            continue
        steps.append(_step(event, observation))
    return steps


def _parsed(body: bytes | None) -> Json:
    parsed: Any = orjson.loads(body) if body else {}
    return parsed if isinstance(parsed, dict) else {}


def _step(event: Json, observation: str) -> Json:
    entity = (event.get("entity") or [{}])[0]
    details = {str(d.get("type")): str(d.get("valueString", "")) for d in entity.get("detail", [])}
    code = str(((event.get("subtype") or [{}])[0]).get("code", ""))
    person = next((a for a in event.get("agent") or [] if a.get("requestor")), None)
    return {
        "alert": details.get("alert", ""),
        "observation": observation,
        "version": details.get("version", ""),
        "step": code,
        "label": _LABELS.get(code, code),
        "at": event.get("recorded", ""),
        "by": (person or {}).get("name", ""),
        "level": details.get("level", ""),
    }


def _alert(alert: str, steps: list[Json]) -> Json:
    last = steps[-1]
    path = " → ".join(
        f"{s['step']} {s['at']}" + (f" ({s['by']})" if s["by"] else "") for s in steps
    )
    return {
        "alert": alert,
        "observation": last["observation"],
        "steps": [
            {k: s[k] for k in ("step", "label", "at", "by", "level", "version")} for s in steps
        ],
        "line": f"critical value {alert} on {last['observation']}: {path}",
    }

"""The lab (S8, S12) as the hub sees it: its settings, the two queues that feed it (FHIR
writes and the LIS's status messages, one active consumer each: it keeps its state in memory),
the big screen's and pooled testing's HTTP routes, and its part of a trace (critical-value
alerts). This module is the lab's piece of the composition root: it may name the lab's web
handlers, which the rest of the lab never does."""

from typing import Any

from hub.bus.routing import Route
from hub.lab import feed
from hub.lab.critical_rules import CriticalRules
from hub.lab.lifecycle import LifecycleConfig
from hub.lab.pool_results import parse_result_rules
from hub.lab.pool_tube import pooling_rules
from hub.lab.settings import NAME, LabSettings
from hub.lab.tat_rules import TatRules
from hub.lab.trace import alert_tracer
from hub.plugin import FeaturePlugin
from hub.web import lab as lab_web
from hub.web import pooling as pooling_web


def _pooled_testing(raw: Any) -> object:
    return pooling_rules(raw), parse_result_rules(raw["result"])


PLUGIN = FeaturePlugin(
    name=NAME,
    settings=LabSettings,
    routes=(
        Route(
            feed.FHIR_QUEUE,
            feed.FHIR_EXCHANGE,
            feed.FHIR_BINDINGS,
            "lab-fhir",
            "move the lab's tubes and check results for critical values (the lab service)",
            single_active_consumer=True,
        ),
        Route(
            feed.HL7_QUEUE,
            feed.HL7_EXCHANGE,
            feed.HL7_BINDINGS,
            "lab-hl7",
            "read the LIS's status messages for the stages of its tubes (the lab service)",
            single_active_consumer=True,
        ),
    ),
    handlers={"lab-fhir": feed.fhir_events, "lab-hl7": feed.hl7_status},
    http_routes=(lab_web.add_routes, pooling_web.add_routes),
    tracer=lambda store: ("alerts", alert_tracer(store.resources)),
    site_files={
        "lab-critical-values.json": CriticalRules.from_json,
        "lab-tat-rules.json": TatRules.from_json,
        "lab-lifecycle.json": LifecycleConfig.from_json,
        "pooled-testing.json": _pooled_testing,
    },
)

"""Prometheus metrics of the hub, in one registry owned by the runtime (no global singleton)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class BusMetrics:
    """Per queue: published, consumed, retried, dead-lettered, and handler latency."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.published = Counter(
            "jianhu_bus_published", "Messages confirmed into a queue", ["queue"], registry=registry
        )
        self.consumed = Counter(
            "jianhu_bus_consumed",
            "Deliveries handled successfully and acked",
            ["queue"],
            registry=registry,
        )
        self.retried = Counter(
            "jianhu_bus_retried", "Deliveries sent to a delayed retry", ["queue"], registry=registry
        )
        self.dead_lettered = Counter(
            "jianhu_bus_dead_lettered",
            "Deliveries sent to the dead-letter queue",
            ["queue"],
            registry=registry,
        )
        self.handler_seconds = Histogram(
            "jianhu_bus_handler_seconds",
            "Handler run time per delivery",
            ["queue"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.queue_depth = Gauge(
            "jianhu_bus_queue_depth",
            "Messages waiting, sampled at scrape time",
            ["queue"],
            registry=registry,
        )


class HubMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.bus = BusMetrics(self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)

import pytest

from hub.bus.routing import Route
from hub.bus.topology import INBOUND, work_queue_arguments
from routes.table import RoutingTable, default_table, render


async def _noop(_: object) -> None:
    return None


def test_routes_must_name_registered_handlers() -> None:
    route = Route("normalizer.hl7v2", INBOUND, ("hl7v2.#",), "missing", "v2 to FHIR")
    with pytest.raises(ValueError, match="missing"):
        RoutingTable((route,), {})


def test_two_routes_cannot_share_a_queue() -> None:
    route = Route("q", INBOUND, ("a.#",), "h", "x")
    with pytest.raises(ValueError, match="share"):
        RoutingTable((route, route), {"h": lambda _: _noop})


def test_render_lists_every_route() -> None:
    table = RoutingTable(
        (Route("normalizer.hl7v2", INBOUND, ("hl7v2.ADT.*", "hl7v2.ORU.*"), "h", "v2 to FHIR"),),
        {"h": lambda _: _noop},
    )
    text = render(table)
    assert "normalizer.hl7v2" in text
    assert "hl7v2.ADT.* hl7v2.ORU.*" in text
    assert "v2 to FHIR" in text


def test_the_shipped_table_is_valid() -> None:
    table = default_table()
    assert len({r.queue for r in table.routes}) == len(table.routes)


def test_the_lab_queues_have_one_active_consumer_and_the_rest_do_not() -> None:
    """The lab keeps its state in memory: two processes taking turns on its events would
    each see half of them. Work queues, on the contrary, spread over every worker."""
    specs = {spec.name: spec for spec in default_table().specs()}
    arguments = {
        name: work_queue_arguments(name, 20, spec.single_active_consumer)
        for name, spec in specs.items()
    }
    single = {name for name, args in arguments.items() if args.get("x-single-active-consumer")}
    assert single == {"lab.fhir", "lab.hl7"}
    assert specs["lab.fhir"].exchange == "jianhu.events"
    assert "fhir.Observation.*" in specs["lab.fhir"].bindings
    assert "hl7v2.SSU.#" in specs["lab.hl7"].bindings

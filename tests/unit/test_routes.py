import pytest

from hub.bus.topology import INBOUND
from routes.table import Route, RoutingTable, default_table, render


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

"""The destinations as operations see them (``jianhu destinations``, ``GET /ops/destinations``):
each with its transport, its queue's depth and dead letters, whether it is paused and by whom,
its last delivery and its last error."""

from collections.abc import Sequence
from typing import Any

from hub.base.hospital_time import shown
from hub.bus.base import Bus
from hub.destinations.config import Destination, HttpTransport, MllpTransport
from hub.destinations.router import ADAPTER
from hub.destinations.switch import Switches
from store.ledger import ACCEPTED, Attempt, Ledger, LedgerQuery

Json = dict[str, Any]
TROUBLE_LOOKBACK = 200  # deliveries looked at for the last error


def transport_line(destination: Destination) -> str:
    transport = destination.transport
    if isinstance(transport, MllpTransport):
        tls = "+tls" if transport.tls else ""
        return f"mllp{tls} {transport.host}:{transport.port}"
    if isinstance(transport, HttpTransport):
        return f"http {transport.base_url}"
    return f"amqp {transport.exchange}/{transport.routing_key}"


async def listing(
    destinations: Sequence[Destination], bus: Bus, ledger: Ledger, switches: Switches
) -> list[Json]:
    depths = {depth.queue: depth for depth in await bus.depths()}
    found = []
    for destination in destinations:
        depth = depths.get(destination.queue)
        state = await switches.state(destination.name)
        delivered = await _latest(ledger, destination.name, (ACCEPTED,))
        trouble = await _last_trouble(ledger, destination.name)
        found.append(
            {
                "name": destination.name,
                "description": destination.description,
                "transport": transport_line(destination),
                "queue": destination.queue,
                "waiting": depth.ready if depth is not None else 0,
                "dead": depth.dead if depth is not None else 0,
                "paused": state.paused,
                "switched_by": state.by,
                "switched_at": shown(state.at) if state.at else None,
                "last_delivered_at": shown(delivered.updated_at) if delivered else None,
                "last_error": trouble.error if trouble else "",
                "last_error_at": shown(trouble.finished_at) if trouble else None,
            }
        )
    return found


async def _latest(ledger: Ledger, destination: str, statuses: tuple[str, ...]) -> Any:
    query = LedgerQuery(adapter=ADAPTER, interface=destination, statuses=statuses, limit=1)
    newest = await ledger.search(query)
    return newest[0] if newest else None


async def _last_trouble(ledger: Ledger, destination: str) -> Attempt | None:
    """The latest attempt that did not end in an acceptance, among the latest deliveries (a
    delivery being tried again is "sending", its failed attempts are still its story)."""
    query = LedgerQuery(adapter=ADAPTER, interface=destination, limit=TROUBLE_LOOKBACK)
    failed = [
        attempt
        for submission in await ledger.search(query)
        for attempt in submission.attempts
        if attempt.outcome != ACCEPTED
    ]
    return max(failed, key=lambda attempt: attempt.finished_at, default=None)


def lines(found: Sequence[Json]) -> list[str]:
    """The listing as the CLI prints it."""
    if not found:
        return ["no destinations are configured (destinations.json in JIANHU_CONFIG_DIR)"]
    out = []
    for d in found:
        state = f"PAUSED by {d['switched_by']} at {d['switched_at']}" if d["paused"] else "running"
        out.append(
            f"{d['name']}  {d['transport']}  {state}  waiting {d['waiting']}  dead {d['dead']}  "
            f"last delivered {d['last_delivered_at'] or 'never'}"
        )
        if d["last_error"]:
            out.append(f"    last error at {d['last_error_at']}: {d['last_error']}")
    return out

"""The operations commands: queues, dead letters (``jianhu dlq``), the HL7 v2 archive
(``jianhu messages``), the delivery ledger (``jianhu ledger``) and the path of one message
(``jianhu trace``)."""

import getpass
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from adapters.framework.delivery import Courier
from adapters.framework.views import detail as ledger_detail
from adapters.framework.views import ledger_query
from adapters.framework.views import summary as ledger_summary
from adapters.registry import configured_adapters
from hub.base.correlation import MAX_TRACED_CHARS, traceable
from hub.base.hospital_time import given
from hub.cli.common import open_bus, open_store, print_json, run_async, settings_or_exit
from hub.hl7v2.publishing import Publisher
from hub.hl7v2.replay import archive_query, detail, replay, summary
from hub.trace import lines as trace_lines
from hub.web.ops import dead_letter_detail, dead_letter_summary
from hub.web.trace import access, trace_of
from store.listing import MAX_LISTED


@click.command()
def queues() -> None:
    """Print each routed queue with its waiting and dead-lettered message counts."""
    settings = settings_or_exit()

    async def work() -> None:
        async with open_bus(settings) as bus:
            for depth in await bus.depths():
                click.echo(f"{depth.queue}\tready={depth.ready}\tdead={depth.dead}")

    run_async(work)


@click.group()
def dlq() -> None:
    """Dead letters: list, show one, redrive."""


@dlq.command("list")
@click.argument("queue")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, MAX_LISTED))
def dlq_list(queue: str, limit: int) -> None:
    """List the dead letters of QUEUE (oldest first)."""
    settings = settings_or_exit()

    async def work() -> None:
        async with open_bus(settings) as bus:
            print_json([dead_letter_summary(d) for d in await bus.dead_letters(queue, limit)])

    run_async(work)


@dlq.command("show")
@click.argument("queue")
@click.argument("message_id")
def dlq_show(queue: str, message_id: str) -> None:
    """Show one dead letter of QUEUE with its envelope and why it died."""
    settings = settings_or_exit()

    async def work() -> None:
        async with open_bus(settings) as bus:
            print_json(dead_letter_detail(await bus.dead_letter(queue, message_id)))

    run_async(work)


@dlq.command("redrive")
@click.argument("queue")
@click.option("--id", "ids", multiple=True, help="A message id; repeat for several.")
@click.option("--all", "everything", is_flag=True, help="Redrive every dead letter of QUEUE.")
def dlq_redrive(queue: str, ids: tuple[str, ...], everything: bool) -> None:
    """Put dead letters of QUEUE back on it as fresh first attempts."""
    if bool(ids) == everything:
        raise click.UsageError("give either --id (one or more) or --all")
    settings = settings_or_exit()

    async def work() -> int:
        async with open_bus(settings) as bus:
            return await bus.redrive(queue, list(ids) if ids else None)

    click.echo(f"redriven: {run_async(work)}")


def _filters(function: Callable[..., Any]) -> Callable[..., Any]:
    """The archive filters shared by ``messages list`` and ``messages replay``."""
    for option in reversed(
        [
            click.option("--sender", help="MSH-3 sending application"),
            click.option("--type", "message_type", help="MSH-9 code^event, e.g. ORU^R01"),
            click.option(
                "--status",
                help="received, published, stored, unmapped, failed, rejected, stranded",
            ),
            click.option("--control-id", help="MSH-10"),
            click.option("--patient", "patient_id", help="a patient identifier from PID-3"),
            click.option("--since", type=click.DateTime(), help="received at or after"),
            click.option("--until", type=click.DateTime(), help="received before"),
            click.option(
                "--limit", default=100, show_default=True, type=click.IntRange(1, MAX_LISTED)
            ),
        ]
    ):
        function = option(function)
    return function


def _local(moment: datetime | None) -> datetime | None:
    """Times typed at the console are the hospital's local time."""
    return given(moment) if moment is not None else None


@click.group()
def messages() -> None:
    """The HL7 v2 message archive: list, show, replay, purge."""


@messages.command("list")
@_filters
def messages_list(**filters: Any) -> None:
    """List archived messages (no content), oldest first."""
    settings = settings_or_exit()
    filters["since"], filters["until"] = _local(filters["since"]), _local(filters["until"])

    async def work() -> None:
        async with open_store(settings) as store:
            print_json([summary(m) for m in await store.archive.search(archive_query(**filters))])

    run_async(work)


@messages.command("show")
@click.argument("message_id")
def messages_show(message_id: str) -> None:
    """Show one archived message with its text, ACK and the resources it produced."""
    settings = settings_or_exit()

    async def work() -> None:
        async with open_store(settings) as store:
            print_json(detail(await store.archive.get(message_id)))

    run_async(work)


@messages.command("replay")
@click.option("--id", "ids", multiple=True, help="An archive id; repeat for several.")
@_filters
def messages_replay(ids: tuple[str, ...], **filters: Any) -> None:
    """Replay messages (by --id, or every one matching the filters) as new attempts."""
    chosen = {k: v for k, v in filters.items() if v is not None and k != "limit"}
    if bool(ids) == bool(chosen):
        raise click.UsageError("give either --id (one or more) or at least one filter")
    settings = settings_or_exit()
    filters["since"], filters["until"] = _local(filters["since"]), _local(filters["until"])

    async def work() -> int:
        async with open_store(settings) as store, open_bus(settings) as bus:
            if ids:
                found = [await store.archive.get(i) for i in ids]
            else:
                found = list(await store.archive.search(archive_query(**filters)))
            publisher = Publisher(bus, store.archive, settings.hl7.claim_grace_s)
            return await replay(publisher, found)

    click.echo(f"replayed: {run_async(work)}")


@messages.command("purge")
@click.option("--type", "message_type", required=True, help="MSH-9 code^event")
@click.option("--before", type=click.DateTime(), required=True)
def messages_purge(message_type: str, before: datetime) -> None:
    """Delete (for good) the archived messages of a type received before a time."""
    settings = settings_or_exit()

    async def work() -> int:
        async with open_store(settings) as store:
            return await store.archive.purge(message_type, _local(before) or before)

    click.echo(f"purged: {run_async(work)}")


@click.group()
def ledger() -> None:
    """The outbound delivery ledger: list, show, retry, cancel, redrive."""


@ledger.command("list")
@click.option("--adapter", help="e.g. drg")
@click.option("--interface", help="e.g. baInfo")
@click.option("--key", help="the business key, e.g. 病案号-住院次数")
@click.option("--status", help="pending, sending, accepted, rejected, failed, dead, cancelled")
@click.option("--since", type=click.DateTime(), help="created at or after")
@click.option("--until", type=click.DateTime(), help="created before")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, MAX_LISTED))
def ledger_list(**filters: Any) -> None:
    """List submissions (no payload), newest first."""
    settings = settings_or_exit()
    filters["since"], filters["until"] = _local(filters["since"]), _local(filters["until"])
    query = ledger_query({k: v for k, v in filters.items() if v is not None})

    async def work() -> None:
        async with open_store(settings) as store:
            print_json([ledger_summary(s) for s in await store.ledger.search(query)])

    run_async(work)


@ledger.command("show")
@click.argument("submission_id")
def ledger_show(submission_id: str) -> None:
    """One submission with its payload and every attempt (request and response)."""
    settings = settings_or_exit()

    async def work() -> None:
        async with open_store(settings) as store:
            print_json(ledger_detail(await store.ledger.get(submission_id)))

    run_async(work)


def _delivery_command(action: str, submission_id: str) -> None:
    settings = settings_or_exit()

    async def work() -> None:
        async with open_store(settings) as store:
            delivery = Courier(store.ledger, configured_adapters(settings))
            act = delivery.retry_now if action == "retry" else delivery.cancel
            try:
                done = await act(submission_id)
            except ValueError as exc:
                raise click.ClickException(str(exc)) from exc
            print_json(ledger_summary(done))

    run_async(work)


@ledger.command("retry")
@click.argument("submission_id")
def ledger_retry(submission_id: str) -> None:
    """Send a failed, dead or rejected submission again now."""
    _delivery_command("retry", submission_id)


@ledger.command("cancel")
@click.argument("submission_id")
def ledger_cancel(submission_id: str) -> None:
    """Withdraw an accepted upload at the receiver, or stop one not yet accepted."""
    _delivery_command("cancel", submission_id)


@ledger.command("redrive")
@click.argument("adapter")
def ledger_redrive(adapter: str) -> None:
    """Every dead submission of an adapter goes back to pending (the hub sends them)."""
    settings = settings_or_exit()

    async def work() -> int:
        async with open_store(settings) as store:
            return await Courier(store.ledger, {}).redrive(adapter)

    click.echo(f"redriven: {run_async(work)}")


@click.command()
@click.argument("id")
@click.option("--json", "as_json", is_flag=True, help="Print the trace as JSON.")
def trace(id: str, as_json: bool) -> None:
    """Show the whole path of one message or request: received, archived, the resource
    versions it wrote, their events, the alerts and submissions they led to.

    ID is a correlation id (a message's archive id, or a request's X-Correlation-ID) or the
    MSH-10 control id of a message."""
    settings = settings_or_exit()
    wanted = traceable(id)
    if wanted is None:
        raise click.UsageError(f"not an id: 1 to {MAX_TRACED_CHARS} printable characters")

    async def work() -> bool:
        async with open_store(settings) as store:
            found = await trace_of(store, wanted)
            await store.resources.append_audit([access(caller(), "ops", found)])
        if as_json:
            print_json(found.as_json())
        else:
            click.echo("\n".join(trace_lines(found)))
        return found.found

    if not run_async(work):
        raise SystemExit(1)


def caller() -> str:
    """The command's user as the audit trail and the switches name it."""
    return f"cli:{_user()}"


def _user() -> str:
    """Who runs the command, for the audit trail; a container's user may have no name."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"

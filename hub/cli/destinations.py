"""``jianhu destinations``: the outbound destinations with their queue depth, dead letters,
pause switch, last delivery and last error; ``pause NAME`` and ``resume NAME`` turn the switch
(as ``POST /ops/destinations/NAME/pause`` does)."""

import click

from hub.cli.common import open_bus, open_store, print_json, run_async, settings_or_exit
from hub.cli.operations import caller
from hub.destinations.config import configured
from hub.destinations.switch import Switches
from hub.destinations.views import lines, listing


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@click.pass_context
def destinations(context: click.Context, as_json: bool) -> None:
    """The outbound destinations: depth, dead letters, paused or not, last error."""
    if context.invoked_subcommand is not None:
        return
    settings = settings_or_exit()

    async def work() -> None:
        async with open_store(settings) as store, open_bus(settings) as bus:
            found = await listing(configured(), bus, store.ledger, Switches(store.jobs))
        if as_json:
            print_json(found)
        else:
            for line in lines(found):
                click.echo(line)

    run_async(work)


@destinations.command("pause")
@click.argument("name")
def pause(name: str) -> None:
    """Hold NAME's deliveries (they wait, in order) until it is resumed."""
    _switch(name, pause=True)


@destinations.command("resume")
@click.argument("name")
def resume(name: str) -> None:
    """Let NAME's waiting deliveries go on."""
    _switch(name, pause=False)


def _switch(name: str, pause: bool) -> None:
    settings = settings_or_exit()
    if name not in {d.name for d in configured()}:
        raise click.ClickException(f"no destination {name!r} (jianhu destinations lists them)")

    async def work() -> None:
        async with open_store(settings) as store:
            state = await Switches(store.jobs).turn(name, pause, caller())
        click.echo(f"{name}: {'paused' if state.paused else 'resumed'} by {state.by}")

    run_async(work)

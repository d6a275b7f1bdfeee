"""The outbound adapters of this hub: one line each in ``PLUGINS``. An adapter without
configuration (no ``JIANHU_<NAME>__*`` set) is not built: its submissions wait in the ledger,
and its scheduled work does not run."""

from adapters.drg.plugin import PLUGIN as DRG
from adapters.epidemic.plugin import PLUGIN as EPIDEMIC
from adapters.fever.plugin import PLUGIN as FEVER
from adapters.flu.plugin import PLUGIN as FLU
from adapters.framework.delivery import Adapter
from adapters.framework.plugin import AdapterJob, AdapterPlugin
from adapters.insurance.plugin import PLUGIN as INSURANCE
from hub.settings import Settings

PLUGINS: tuple[AdapterPlugin, ...] = (DRG, EPIDEMIC, FLU, FEVER, INSURANCE)


def plugin(name: str) -> AdapterPlugin:
    for found in PLUGINS:
        if found.name == name:
            return found
    raise KeyError(f"no adapter named {name!r}")


def configured_adapters(settings: Settings) -> dict[str, Adapter]:
    built: dict[str, Adapter] = {}
    for item in PLUGINS:
        config = settings.section(item.name)
        if config is not None:
            built[item.name] = item.build(config)
    return built


def configured_jobs(settings: Settings) -> list[AdapterJob]:
    """The scheduled work of every configured adapter."""
    return [job for item in PLUGINS if settings.section(item.name) is not None for job in item.jobs]

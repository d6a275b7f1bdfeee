"""The outbound adapters this hub is configured for, built from the settings. An adapter
without configuration (no base URL) is not built: its submissions wait in the ledger."""

from adapters.drg.interfaces import build_adapter as drg_adapter
from adapters.framework.delivery import Adapter
from hub.settings import Settings


def configured_adapters(settings: Settings) -> dict[str, Adapter]:
    adapters: dict[str, Adapter] = {}
    if settings.drg is not None:
        adapters["drg"] = drg_adapter(settings.drg)
    return adapters

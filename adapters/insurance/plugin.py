"""The medical-insurance platforms as the hub sees them: built from ``JIANHU_INSURANCE__*``
(``config.py``), reached synchronously through ``POST /insurance/{platform}/{infno}``
(``hub/web/insurance.py``), every call in the ledger."""

from adapters.framework.delivery import Adapter
from adapters.framework.plugin import AdapterPlugin
from adapters.framework.transport import HttpTransport
from adapters.insurance.client import ADAPTER
from adapters.insurance.config import InsuranceConfig
from adapters.insurance.simulator import create_app
from hub.web.insurance import add_routes


def build_adapter(config: InsuranceConfig) -> Adapter:
    """The ledger's view of the platforms: no queued interface yet; the synchronous calls are
    recorded by the gateway itself."""
    local = config.platforms[config.local]
    return Adapter(ADAPTER, HttpTransport(local.base_url, timeout_s=local.timeout_s), {})


PLUGIN = AdapterPlugin(
    name=ADAPTER,
    settings=InsuranceConfig,
    build=build_adapter,
    http_routes=(add_routes,),
    # ``jianhu simulate insurance --org-code H33060200001``: the institution's code
    simulator=lambda app_id, org_code: create_app(fixmedins_code=org_code),
)

"""The gateway the HIS calls (``POST /insurance/{platform}/{infno}``): one client per platform
(its sign-in kept for the day), the platform chosen by the person's insured area when the HIS
says ``auto``, and the cross-province rule applied on the way (S3): ``out_setl_flag`` set on
the input's nodes, as the national platform expects of an out-of-province settlement."""

from dataclasses import dataclass

from adapters.insurance.client import CallResult, InsuranceClient
from adapters.insurance.config import InsuranceConfig, Scope
from adapters.insurance.envelope import Json, Operator
from hub.base.errors import JianhuError
from store.ledger import Ledger

AUTO = "auto"


class UnknownPlatformError(JianhuError):
    """No platform of that name is configured."""


@dataclass(frozen=True)
class Routed:
    result: CallResult
    platform: str
    scope: Scope


class InsuranceGateway:
    def __init__(self, config: InsuranceConfig, ledger: Ledger) -> None:
        self.config = config
        self._clients = {
            name: InsuranceClient(name, platform, ledger)
            for name, platform in config.platforms.items()
        }

    async def call(
        self,
        platform: str,
        infno: str,
        input_: Json,
        operator: Operator,
        insuplc_admdvs: str = "",
    ) -> Routed:
        scope: Scope = "local"
        if platform == AUTO:
            platform, scope = self.config.route(insuplc_admdvs)
        elif platform not in self._clients:
            raise UnknownPlatformError(f"no insurance platform named {platform!r}")
        else:
            scope = self.config.route(insuplc_admdvs)[1]
        if scope == "cross-province":
            input_ = _cross_province(input_)
        client = self._clients[platform]
        return Routed(await client.call(infno, input_, operator, insuplc_admdvs), platform, scope)

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()


def _cross_province(input_: Json) -> Json:
    """Every ``data``-like node of the input carries ``out_setl_flag`` 1 (异地结算)."""
    changed = dict(input_)
    for name, node in input_.items():
        if isinstance(node, dict):
            changed[name] = {**node, "out_setl_flag": "1"}
    return changed

"""The gateway the HIS calls (``POST /insurance/{platform}/{infno}``): one client per platform
(its sign-in kept for the day), the platform chosen by the person's insured area when the HIS
says ``auto``, and the cross-province rule applied on the way (S3): ``out_setl_flag`` set on
the input's nodes, as the national platform expects of an out-of-province settlement."""

from dataclasses import dataclass

from adapters.insurance.client import CallResult, InsuranceClient, OutcomeUnknownError
from adapters.insurance.config import InsuranceConfig, Scope
from adapters.insurance.envelope import Json, MessageIds, Operator
from hub.base.errors import JianhuError
from store.ledger import Ledger

AUTO = "auto"
MONEY = ("2207", "2207A", "2304", "2304A")  # settlements: a lost answer is reversed at once
REVERSAL = "2601"


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
        ids: dict[str, MessageIds] = {}  # one sequence per institution code
        self._clients = {}
        for name, platform in config.platforms.items():
            code = platform.institution.fixmedins_code
            shared = ids.setdefault(code, MessageIds(code))
            self._clients[name] = InsuranceClient(name, platform, ledger, ids=shared)

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
        try:
            result = await client.call(infno, input_, operator, insuplc_admdvs)
        except OutcomeUnknownError as unknown:
            if infno in MONEY:
                await self._reverse(client, unknown, infno, input_, operator, insuplc_admdvs)
            raise
        return Routed(result, platform, scope)

    async def _reverse(
        self,
        client: InsuranceClient,
        unknown: OutcomeUnknownError,
        infno: str,
        input_: Json,
        operator: Operator,
        insuplc_admdvs: str,
    ) -> None:
        """A settlement whose answer was lost is reversed (2601) by its msgid, so that it is
        either withdrawn or known never to have happened: the HIS settles again, never twice."""
        data = input_.get("data") if isinstance(input_.get("data"), dict) else {}
        reversal = {
            "data": {
                "psn_no": (data or {}).get("psn_no", ""),
                "omsgid": unknown.msgid,
                "oinfno": infno,
            }
        }
        try:
            done = await client.call(REVERSAL, reversal, operator, insuplc_admdvs)
        except OutcomeUnknownError as again:
            unknown.reversal_call_id = again.call_id
            return  # both unknown: a person resolves it from the ledger's two records
        except JianhuError:
            return  # the reversal could not be sent (sign-in refused): still unknown
        unknown.reversal_call_id = done.call_id
        # only an accepted reversal settles the question: "no such transaction" just after a
        # timeout may mean the settlement has not arrived yet, so it stays unknown
        if done.answer.succeeded:
            unknown.resolution = "reversed"

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

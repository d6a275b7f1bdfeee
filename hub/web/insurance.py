"""The insurance gateway for the HIS: ``POST /insurance/{platform}/{infno}`` with
``{"input": {...}, "operator": {"opter": ..., "opter_name": ..., "opter_type": "1"},
"insuplc_admdvs": "330100"}``; ``platform`` is a configured name or ``auto`` (chosen by the
person's insured area). The hub fills the national envelope, signs in when it must, records
the call in the ledger and answers ``{"call_id", "msgid", "platform", "scope", "answer"}`` with
the platform's answer unchanged. No answer from the platform is a 504 naming the msgid: the
outcome is unknown and must be resolved by a query or a reversal, never by sending again."""

from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from adapters.insurance.client import OutcomeUnknownError
from adapters.insurance.envelope import MessageIdsSpentError, Operator
from adapters.insurance.gateway import InsuranceGateway, UnknownPlatformError
from adapters.insurance.signin import SignInRefusedError
from hub.settings import Role
from hub.web.auth import allow
from hub.web.errors import problem
from hub.web.keys import RUNTIME

# made at the first call (the store is open by then), kept for the sign-ins it holds
GATEWAY = web.AppKey("insurance_gateway", dict[str, InsuranceGateway])


def add_routes(app: web.Application) -> None:
    app[GATEWAY] = {}
    app.router.add_post("/insurance/{platform}/{infno:[0-9A-Z]{4,6}}", call)
    app.on_cleanup.append(_close)


@allow(Role.SYSTEM)
async def call(request: web.Request) -> web.Response:
    gateway = _gateway(request.app)
    if gateway is None:
        return problem(503, "not-supported", "no insurance platform is configured")
    try:
        body: Any = orjson.loads(await request.read())
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            raise ValueError("the body is {input: {...}, operator: {...}}")
        orjson.dumps(body["input"])  # what cannot be sent on (too deep) is refused here
        operator = Operator.model_validate(body.get("operator") or {})
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
        return problem(400, "invalid", f"operator: {fields} missing or not valid")
    except (ValueError, TypeError, RecursionError) as exc:
        return problem(400, "invalid", str(exc).splitlines()[0][:200])
    platform, infno = request.match_info["platform"], request.match_info["infno"]
    insuplc = str(body.get("insuplc_admdvs") or "")
    try:
        routed = await gateway.call(platform, infno, body["input"], operator, insuplc)
    except UnknownPlatformError as exc:
        return problem(404, "not-found", str(exc))
    except OutcomeUnknownError as exc:
        # a lost settlement has been reversed ("reversed") or is known not to have happened
        # ("not done"): either way nothing stands and the HIS may settle again
        shown = {
            "error": "no answer from the platform",
            "msgid": exc.msgid,
            "call_id": exc.call_id,
            "resolution": exc.resolution or "unknown",
            "reversal_call_id": exc.reversal_call_id,
        }
        return web.json_response(shown, status=504)
    except (SignInRefusedError, MessageIdsSpentError) as exc:
        return problem(503, "transient", str(exc))
    result = routed.result
    return web.json_response(
        {
            "call_id": result.call_id,
            "msgid": result.msgid,
            "platform": routed.platform,
            "scope": routed.scope,
            "answer": result.answer.body,
        }
    )


def _gateway(app: web.Application) -> InsuranceGateway | None:
    made = app[GATEWAY]
    if "gateway" not in made:
        runtime = app[RUNTIME]
        config = runtime.settings.section("insurance")
        if config is None:
            return None
        made["gateway"] = InsuranceGateway(config, runtime.store.ledger)
    return made["gateway"]


async def _close(app: web.Application) -> None:
    for gateway in app[GATEWAY].values():
        await gateway.close()

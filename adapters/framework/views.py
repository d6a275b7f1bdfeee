"""How operations see the ledger: lists carry no payload (it holds patient data), one
submission shown in full carries its payload and every attempt."""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from hub.base.hospital_time import given, parse_given, shown
from hub.base.json import Json
from hub.trace import Traced
from store.ledger import Ledger, LedgerQuery, Submission
from store.listing import MAX_LISTED, listing_limit


def summary(submission: Submission) -> dict[str, Any]:
    s = submission
    return {
        "id": s.id,
        "adapter": s.adapter,
        "interface": s.interface,
        "business_key": s.business_key,
        "kind": s.kind,
        "status": s.status,
        "error": s.error,
        "attempts": len(s.attempts),
        "created_at": shown(s.created_at),
        "updated_at": shown(s.updated_at),
        "next_attempt_at": shown(s.next_attempt_at) if s.next_attempt_at else None,
        "external_id": s.external_id,
        "cancels": s.cancels,
        "replaces": s.replaces,
    }


def detail(submission: Submission) -> dict[str, Any]:
    return summary(submission) | {
        "payload": submission.payload,
        "attempts": [
            {
                "number": a.number,
                "started_at": shown(a.started_at),
                "finished_at": shown(a.finished_at),
                "outcome": a.outcome,
                "error": a.error,
                "request": a.request,
                "response": a.response,
            }
            for a in submission.attempts
        ],
    }


FILTERS = ("adapter", "interface", "key", "status", "since", "until", "limit")


def ledger_query(values: dict[str, Any]) -> LedgerQuery:
    """The filters of the ops API and the CLI; an unknown one is an error, not ignored."""
    unknown = set(values) - set(FILTERS)
    if unknown:
        raise ValueError(f"unknown filter(s): {', '.join(sorted(unknown))}")
    moments = {
        k: given(v) if isinstance(v, datetime) else parse_given(k, str(v))
        for k in ("since", "until")
        if (v := values.get(k))
    }
    status = values.get("status")
    return LedgerQuery(
        adapter=values.get("adapter"),
        interface=values.get("interface"),
        business_key=values.get("key"),
        statuses=tuple(str(status).split(",")) if status else (),
        created_from=moments.get("since"),
        created_to=moments.get("until"),
        limit=listing_limit(values.get("limit")),
    )


# The regulator's answer as the trace shows it: enough for its code and message.
ANSWER_CHARS = 300


def submission_tracer(ledger: Ledger) -> Callable[[Traced], Awaitable[list[Json]]]:
    """The ledger's part of ``jianhu trace``: the submissions built from versions the message
    or request wrote, oldest first, each with its last answer."""

    async def submissions(traced: Traced) -> list[Json]:
        found = await ledger.search(LedgerQuery(correlation=traced.correlation, limit=MAX_LISTED))
        return [_traced(s) for s in reversed(found)]

    return submissions


def _traced(submission: Submission) -> Json:
    last = submission.attempts[-1] if submission.attempts else None
    # an HL7 answer's segments end in CR, which a terminal takes for a return to the line start
    answer = last.response[:ANSWER_CHARS].replace("\r", " ⏎ ").strip() if last is not None else ""
    attempts = f"{len(submission.attempts)} attempt(s)"
    said = f", answer {answer}" if answer else ""
    return summary(submission) | {
        "answer": answer,
        "line": (
            f"{submission.adapter}/{submission.interface} {submission.kind} "
            f"{submission.business_key} {submission.status}, {attempts}{said} ({submission.id})"
        ),
    }

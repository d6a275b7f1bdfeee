"""R4 Subscriptions with the rest-hook channel, fed from the events exchange.

Two queues, so one slow or failing endpoint never holds back matching or other endpoints:
- ``fhir.subscriptions`` takes every ``fhir.#`` event, finds the active Subscriptions whose
  criteria (a search) the new version matches, and publishes one delivery job per match;
- ``fhir.subscription-delivery`` sends each job to its endpoint. A transport failure, a 5xx,
  408 or 429 is retried through the bus's delay tiers; any other 4xx goes straight to the dead
  letters. Nothing is dropped: a dead delivery waits for ``jianhu dlq redrive``.
"""

from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import parse_qsl

import aiohttp
import orjson
from aiocache import SimpleMemoryCache

from hub.base.errors import PermanentError, ResourceGoneError, ResourceNotFoundError, RetryableError
from hub.bus.base import Bus, Delivery, Handler
from hub.bus.topology import INBOUND
from hub.events import read_change_set
from store.query import parse_search
from store.resources import ResourceStore

DELIVER_KEY = "hub.subscription.deliver"
CACHE_S = 5.0
ACTIVE = "active-rest-hooks"  # the cache key of the active rest-hook Subscriptions
TIMEOUT_S = 10.0


class Services(Protocol):
    """What the handlers need of the running hub."""

    @property
    def bus(self) -> Bus: ...

    @property
    def resources(self) -> ResourceStore: ...

    def http_client(self) -> aiohttp.ClientSession: ...


async def active_rest_hooks(resources: ResourceStore) -> list[dict[str, Any]]:
    query = parse_search("Subscription", [("status", "active"), ("type", "rest-hook")])
    page = await resources.search(query, count=1000)
    return [orjson.loads(version.body or b"{}") for version in page.items]


async def matching(
    resources: ResourceStore, criteria: str, type_: str, ids: Sequence[str]
) -> set[str]:
    """Which of ``ids`` of ``type_`` satisfy the subscription's search in their current
    version: one search for a whole change set (at most SET_ENTRIES ids)."""
    wanted_type, _, query = criteria.partition("?")
    if wanted_type != type_ or not ids:
        return set()
    pairs = [*parse_qsl(query, keep_blank_values=True), ("_id", ",".join(ids))]
    page = await resources.search(parse_search(type_, pairs), count=len(ids))
    return {version.id for version in page.items}


def matcher(services: Services) -> Handler:
    # The active subscriptions, read again after a Subscription changes (when this process
    # sees the event) and at least every CACHE_S (when another hub process consumed it),
    # instead of once per event.
    cache = SimpleMemoryCache()

    async def handle(delivery: Delivery) -> None:
        envelope = delivery.envelope
        changes = read_change_set(envelope, delivery.routing_key)
        type_ = envelope.headers.get("resource-type", "")
        if type_ == "Subscription":
            await cache.delete(ACTIVE)
        changes = [c for c in changes if c.change != "deleted"]  # a deletion matches no search
        if type_ == "Subscription":
            for change in changes:
                await _activate(services.resources, change.id)
        if not changes:
            return
        active: list[dict[str, Any]] | None = await cache.get(ACTIVE)
        if active is None:
            active = await active_rest_hooks(services.resources)
            await cache.set(ACTIVE, active, ttl=CACHE_S)
        ids = list(dict.fromkeys(change.id for change in changes))
        for subscription in active:
            criteria = subscription.get("criteria", "")
            matched = await matching(services.resources, criteria, type_, ids)
            jobs = [
                envelope.caused(
                    "subscription.deliver",
                    "application/json",
                    orjson.dumps({"subscription": subscription["id"], "version": c.version_path}),
                )
                for c in changes
                if c.id in matched
            ]
            if jobs:
                await services.bus.publish_many([(job, DELIVER_KEY) for job in jobs], INBOUND)

    return handle


async def _activate(resources: ResourceStore, id_: str) -> None:
    """A new rest-hook Subscription is taken on at once: ``requested`` becomes ``active``."""
    try:
        current = await resources.read("Subscription", id_)
    except (ResourceNotFoundError, ResourceGoneError):
        return
    subscription = orjson.loads(current.body or b"{}")
    if subscription.get("status") == "requested":
        subscription["status"] = "active"
        await resources.update(subscription, if_match=current.version)


def sender(services: Services) -> Handler:
    async def handle(delivery: Delivery) -> None:
        job = orjson.loads(delivery.envelope.body)
        try:
            current = await services.resources.read("Subscription", job["subscription"])
        except (ResourceNotFoundError, ResourceGoneError):
            return  # the subscription is gone: nobody wants this any more
        subscription = orjson.loads(current.body or b"{}")
        if subscription.get("status") != "active":
            return
        await _post(services.http_client(), services.resources, subscription, job["version"])

    return handle


async def _post(
    client: aiohttp.ClientSession,
    resources: ResourceStore,
    subscription: dict[str, Any],
    version_path: str,
) -> None:
    channel = subscription.get("channel", {})
    endpoint = channel.get("endpoint", "")
    headers = dict(_header(line) for line in channel.get("header", []) if ":" in line)
    method, url, body = "POST", endpoint, None
    if channel.get("payload"):  # with a payload the resource is PUT to endpoint/Type/id
        type_, id_, _, version = version_path.split("/")
        stored = await resources.vread(type_, id_, int(version))
        method, url, body = "PUT", f"{endpoint.rstrip('/')}/{type_}/{id_}", stored.body
        headers["Content-Type"] = channel["payload"]
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    try:
        async with client.request(
            method, url, data=body, headers=headers, timeout=timeout
        ) as response:
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise RetryableError(f"rest-hook {subscription['id']}: {type(exc).__name__}") from exc
    if status >= 500 or status in (408, 429):
        raise RetryableError(f"rest-hook {subscription['id']}: endpoint answered {status}")
    if status >= 400:
        raise PermanentError(f"rest-hook {subscription['id']}: endpoint refused with {status}")


def _header(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    return name.strip(), value.strip()

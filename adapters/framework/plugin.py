"""What an outbound adapter declares about itself, in one place of its own package: its name
(its ledger rows and its settings ``JIANHU_<NAME>__*`` carry it), how it is built from its
settings, the scheduled work it needs, and its simulator. ``adapters/registry.py`` lists the
adapters; the runtime and the CLI take everything from there, so adding an adapter touches its
package and that one line."""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

import click
from aiohttp import web
from pydantic import BaseModel

from adapters.framework.delivery import Adapter, Courier
from hub.base.progress import ProgressReporter
from hub.bus.routing import HandlerFactory, Route
from hub.schedule import Schedule
from store.leases import JobStore
from store.resources import ResourceStore


class AdapterServices(Protocol):
    """What an adapter's scheduled work may use of the running hub."""

    @property
    def resources(self) -> ResourceStore: ...

    @property
    def courier(self) -> Courier: ...

    async def last_success(self, job: str) -> datetime | None:
        """When the latest run of the job that ended well began: what a failed run was
        to cover is covered by the next one."""


@dataclass(frozen=True)
class AdapterJob:
    name: str  # unique in the hub: prefixed by the adapter's name
    schedule: Schedule
    run: Callable[[AdapterServices], Awaitable[None]]
    catch_up: bool = False  # after downtime, run once for the missed due times


@dataclass(frozen=True)
class BackfillRequest:
    """``jianhu report backfill <name>``: deliver the history of a range of days."""

    resources: ResourceStore
    courier: Courier
    jobs: JobStore
    config: Any  # the adapter's settings
    since: date | None  # None: the adapter's configured start
    until: date | None  # None: yesterday
    restart: bool  # ignore where an interrupted run stopped
    progress: Callable[[str, str], ProgressReporter]  # (work, unit) -> its reporter


@dataclass(frozen=True)
class BackfillDone:
    summary: str  # the range and what became of its rows
    complete: bool  # every row is at the platform (none waiting for a resend, none held)


@dataclass(frozen=True)
class AdapterPlugin:
    name: str
    settings: type[BaseModel]  # ``JIANHU_<NAME>__*``; the adapter is built only when set
    build: Callable[[Any], Adapter]  # from its settings
    jobs: Sequence[AdapterJob] = ()
    # ``jianhu simulate <name>``: the app, given the identity it expects of the hub
    simulator: Callable[[str, str], web.Application] | None = None
    # the tables a site may override in JIANHU_CONFIG_DIR: file name -> what reads (checks) it
    site_files: Mapping[str, Callable[[Any], object]] = field(default_factory=dict)
    # ``jianhu <name> ...``: the adapter's own commands, as a click group
    commands: click.Group | None = None
    # the queues it consumes with their handlers (an adapter that reports on events), and its
    # own HTTP routes (a receiver's callback); an adapter not configured still has its queues,
    # where its work waits
    routes: Sequence[Route] = ()
    handlers: Mapping[str, HandlerFactory] = field(default_factory=dict)
    http_routes: Sequence[Callable[[web.Application], None]] = ()
    # ``jianhu report backfill <name>``: the history, resumable; answers a summary line
    backfill: Callable[[BackfillRequest], Awaitable[BackfillDone]] | None = None

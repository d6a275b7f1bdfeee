"""What a feature package (the lab, and those to come) declares about itself, in one place of
its own (``<package>/plugin.py``): its settings (``JIANHU_<NAME>__*``), the queues it consumes
with their handlers, its HTTP routes, its part of ``jianhu trace`` and the tables a site may
override. ``hub/registry.py``
lists the features, one line each; the settings, the routing table, the web app and the trace
collect them from there. Outbound adapters declare the same and more in their own shape
(``adapters/framework/plugin.py``)."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from hub.bus.routing import HandlerFactory, Route
from hub.trace import Tracer


@dataclass(frozen=True)
class FeaturePlugin:
    name: str
    settings: type[BaseModel]  # present with its defaults: a feature runs unless told not to
    routes: Sequence[Route] = ()
    # routes that come from the site's configuration (a queue per outbound destination): read
    # where the routing table is built, after ``JIANHU_CONFIG_DIR`` is known
    configured_routes: Callable[[], Sequence[Route]] | None = None
    handlers: Mapping[str, HandlerFactory] = field(default_factory=dict)
    http_routes: Sequence[Callable[[web.Application], None]] = ()
    # from the open store, the tracer of its part of a trace
    tracer: Callable[[Any], Tracer] | None = None
    # the tables a site may override in JIANHU_CONFIG_DIR: file name -> what reads (checks) it
    site_files: Mapping[str, Callable[[Any], object]] = field(default_factory=dict)

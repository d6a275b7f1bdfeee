"""Typed aiohttp application keys."""

from typing import TYPE_CHECKING

from aiohttp import web

from hub.fhir.scopes import Principal
from hub.settings import Role

if TYPE_CHECKING:  # the runtime names the handlers' modules: importing it here would loop
    from hub.runtime import Runtime

RUNTIME: web.AppKey["Runtime"] = web.AppKey("runtime")
ROLE = web.RequestKey("role", Role)  # the caller's role, set by the auth middleware
PRINCIPAL = web.RequestKey("principal", Principal)  # the caller with scopes, likewise

"""Typed aiohttp application keys."""

from aiohttp import web

from hub.fhir.scopes import Principal
from hub.runtime import Runtime
from hub.settings import Role

RUNTIME = web.AppKey("runtime", Runtime)
ROLE = web.RequestKey("role", Role)  # the caller's role, set by the auth middleware
PRINCIPAL = web.RequestKey("principal", Principal)  # the caller with scopes, likewise

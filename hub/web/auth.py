"""Bearer-token authentication and role checks for every HTTP API.

Keys come from ``JIANHU_API_KEYS``; each carries one role. Routes declare the roles they allow
with ``@allow(...)``; a route without it is public (only the health probes are).
"""

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from hub.settings import Role, Settings
from hub.web.errors import problem
from hub.web.keys import ROLE, RUNTIME

RequestHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_ALLOWED = "__jianhu_roles__"


def allow(*roles: Role) -> Callable[[RequestHandler], RequestHandler]:
    """Mark a handler with the roles that may call it (admin may call everything)."""

    def mark(handler: RequestHandler) -> RequestHandler:
        setattr(handler, _ALLOWED, frozenset(roles) | {Role.ADMIN})
        return handler

    return mark


def role_for(settings: Settings, token: str) -> Role | None:
    """Constant-time comparison against every configured key."""
    found = None
    for api_key in settings.api_keys:
        if hmac.compare_digest(api_key.key.get_secret_value().encode(), token.encode()):
            found = api_key.role
    return found


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    roles: frozenset[Role] | None = getattr(handler, _ALLOWED, None)
    if roles is None:
        return await handler(request)  # type: ignore[no-any-return]
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return problem(401, "login", "a bearer token is required", {"WWW-Authenticate": "Bearer"})
    role = role_for(request.app[RUNTIME].settings, token.strip())
    if role is None:
        return problem(401, "login", "unknown token", {"WWW-Authenticate": "Bearer"})
    if role not in roles:
        return problem(403, "forbidden", f"role {role} may not do this")
    request[ROLE] = role
    return await handler(request)  # type: ignore[no-any-return]

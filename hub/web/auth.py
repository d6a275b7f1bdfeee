"""Bearer-token authentication and role checks for every HTTP API.

Tokens are API keys from ``JIANHU_API_KEYS`` (each carries one role) or JWTs
(``hub.web.tokens``). Routes declare the roles they allow
with ``@allow(...)``; a route without it is public (only the health probes are).
"""

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from hub.base.correlation import within
from hub.settings import Role
from hub.web.correlation import as_caller
from hub.web.errors import problem
from hub.web.keys import PRINCIPAL, ROLE, RUNTIME
from hub.web.tokens import TokenError, principal_for

RequestHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_ALLOWED = "__jianhu_roles__"


def allow(*roles: Role) -> Callable[[RequestHandler], RequestHandler]:
    """Mark a handler with the roles that may call it (admin may call everything)."""

    def mark(handler: RequestHandler) -> RequestHandler:
        setattr(handler, _ALLOWED, frozenset(roles) | {Role.ADMIN})
        return handler

    return mark


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    roles: frozenset[Role] | None = getattr(handler, _ALLOWED, None)
    if roles is None:
        return await handler(request)  # type: ignore[no-any-return]
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return problem(401, "login", "a bearer token is required", {"WWW-Authenticate": "Bearer"})
    try:
        principal = principal_for(request.app[RUNTIME].settings, token.strip())
    except TokenError as exc:
        return problem(401, "login", str(exc), {"WWW-Authenticate": "Bearer"})
    if principal is None:
        return problem(401, "login", "unknown token", {"WWW-Authenticate": "Bearer"})
    role = Role(principal.role)
    if role not in roles:
        return problem(403, "forbidden", f"role {role} may not do this")
    request[ROLE] = role
    request[PRINCIPAL] = principal
    with within(as_caller(principal.subject)):
        return await handler(request)  # type: ignore[no-any-return]

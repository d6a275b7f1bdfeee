"""Bearer tokens to principals: a static API key (``JIANHU_API_KEYS``) or a JWT signed with
the configured HS256 secret or RS256 key. API keys carry their role's full scopes; a JWT
carries its own ``scope`` claim (SMART style) and, for ``patient/`` scopes, a ``patient``."""

import hmac

import jwt

from hub.base.errors import PermanentError
from hub.fhir.scopes import Principal
from hub.settings import Role, Settings

# What an API key may do: keys are for systems and trusted staff tools, not patients.
_ROLE_SCOPES = {
    Role.ADMIN: "system/*.*",
    Role.CLINICIAN: "user/*.*",
    Role.SYSTEM: "system/*.*",
    Role.OPS: "system/AuditEvent.read",
    Role.SCREEN: "user/Observation.read user/ServiceRequest.read user/Specimen.read",
}


class TokenError(PermanentError):
    """The token is not acceptable; the message says why (never the token itself)."""


def principal_for(settings: Settings, token: str) -> Principal | None:
    """The caller, or None for an unknown API key that is not a JWT either."""
    for api_key in settings.api_keys:  # constant-time against every key
        if hmac.compare_digest(api_key.key.get_secret_value().encode(), token.encode()):
            role = api_key.role
            return Principal.of(role, f"api-key:{role}", _ROLE_SCOPES[role])
    if token.count(".") == 2 and _jwt_configured(settings):
        return _from_jwt(settings, token)
    return None


def _jwt_configured(settings: Settings) -> bool:
    return bool(
        settings.jwt.hs256_secret.get_secret_value()
        or settings.jwt.rs256_public_key.get_secret_value()
    )


def _from_jwt(settings: Settings, token: str) -> Principal:
    config = settings.jwt
    keys = []
    if secret := config.hs256_secret.get_secret_value():
        keys.append((secret, "HS256"))
    if public := config.rs256_public_key.get_secret_value():
        keys.append((public, "RS256"))
    header_alg = _algorithm(token)
    for key, algorithm in keys:
        if algorithm != header_alg:
            continue
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],  # never "none", never the other family
                audience=config.audience or None,
                issuer=config.issuer or None,
                leeway=config.leeway_s,
                options={"require": ["exp", "sub"], "verify_aud": bool(config.audience)},
            )
        except jwt.PyJWTError as exc:
            raise TokenError(f"the token is not valid: {type(exc).__name__}") from exc
        role = claims.get(config.role_claim, Role.CLINICIAN)
        if role not in Role.__members__.values():
            raise TokenError(f"the token's role {role!r} is not one of the hub's roles")
        patient = claims.get("patient")
        return Principal.of(Role(role), str(claims["sub"]), str(claims.get("scope", "")), patient)
    raise TokenError(f"tokens signed with {header_alg} are not accepted here")


def _algorithm(token: str) -> str:
    try:
        return str(jwt.get_unverified_header(token).get("alg", ""))
    except jwt.PyJWTError as exc:
        raise TokenError("the token's header cannot be read") from exc

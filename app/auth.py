"""Supabase access tokens: verify them the way the Data API does (HS256, the project's JWT secret).

Used by the support console, which acts in the database as the signed-in user, so that RLS and
the RPCs' own checks decide what the user may do, never this Python code.
"""

from __future__ import annotations

from typing import Any

import jwt

API_ROLES = ("anon", "authenticated", "service_role")


class InvalidToken(Exception):
    """The token is malformed, forged, expired or not for this API."""


def verify_access_token(token: str, secret: str) -> dict[str, Any]:
    """Return the claims of a valid HS256 token; raise InvalidToken otherwise."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={"require": ["exp", "role"], "verify_aud": False},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    if claims.get("role") not in API_ROLES:
        raise InvalidToken("role is not an API role")
    if claims.get("role") == "authenticated" and not claims.get("sub"):
        raise InvalidToken("an authenticated token needs a sub")
    return claims


def is_support(claims: dict[str, Any]) -> bool:
    return claims.get("role") == "authenticated" and (claims.get("app_metadata") or {}).get("role") == "support"

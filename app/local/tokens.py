"""Local JWTs for the local Data API stand-in (app/local/dataapi.py) — never for production.

Supabase's Auth service signs a user's access token with the project's JWT secret (HS256); the
Data API (PostgREST) verifies it and hands its claims to Postgres, where `auth.uid()` reads `sub`
and RLS decides. Locally there is no Auth service, so this module mints tokens shaped like the
ones Supabase issues, signed with `ZR_JWT_SECRET` or, with ZR_ENV=development only
(scripts/dev-token sets it), the Supabase CLI's well-known local secret. The CLI's well-known
local `anon` and `service_role` keys are kept here too: they are signed with that same secret,
so the stand-in accepts them.

Command line (wrapped by `scripts/dev-token`):

    python -m app.local.tokens <email> [--role support] [--expires-in SECONDS]

prints a token for the auth.users row with that e-mail (its id is read from DATABASE_URL).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Mapping
from typing import Any

import jwt

from ..config import SUPABASE_CLI_JWT_SECRET, SUPABASE_CLI_SERVICE_ROLE_KEY, default_database_url, secret_from_env

#: The Supabase CLI's local JWT secret (`supabase status` prints it). Public knowledge: local only.
LOCAL_JWT_SECRET = SUPABASE_CLI_JWT_SECRET
#: The Supabase CLI's local anon key: {"iss": "supabase-demo", "role": "anon", "exp": 1983812996}.
LOCAL_ANON_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9."
    "CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0"
)
#: The Supabase CLI's local service_role key: {"iss": "supabase-demo", "role": "service_role", ...}.
LOCAL_SERVICE_ROLE_KEY = SUPABASE_CLI_SERVICE_ROLE_KEY
#: What Supabase Auth puts in `aud` (and `role`) of a signed-in user's token.
AUTHENTICATED_AUDIENCE = "authenticated"
LOCAL_ISSUER = "http://127.0.0.1:54321/auth/v1"
DEFAULT_EXPIRES_IN = 3600
#: Support staff are ordinary users whose app_metadata.role is "support" (see issue 10).
APP_ROLES = ("landlord", "support")


def jwt_secret(env: Mapping[str, str] | None = None) -> str:
    """The HS256 secret under the service's rule (app.config.secret_from_env): ZR_JWT_SECRET, or
    with ZR_ENV=development the Supabase CLI's local one; ConfigError otherwise."""
    return secret_from_env("ZR_JWT_SECRET", env)


def mint_token(
    sub: str | uuid.UUID,
    *,
    email: str | None = None,
    phone: str | None = None,
    role: str = "authenticated",
    app_metadata: Mapping[str, Any] | None = None,
    user_metadata: Mapping[str, Any] | None = None,
    expires_in: int = DEFAULT_EXPIRES_IN,
    secret: str | None = None,
    extra_claims: Mapping[str, Any] | None = None,
    now: int | None = None,
) -> str:
    """An HS256 access token with the claims Supabase Auth issues for a signed-in user.

    `role` is the Postgres role the Data API switches to (`authenticated` for users);
    `extra_claims` override anything (tests use it to forge bad tokens on purpose).
    """
    if expires_in <= 0 and extra_claims is None:
        raise ValueError("expires_in must be positive")
    issued = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        "iss": LOCAL_ISSUER,
        "sub": str(sub),
        "aud": AUTHENTICATED_AUDIENCE,
        "exp": issued + expires_in,
        "iat": issued,
        "email": email or "",
        "phone": phone or "",
        "app_metadata": dict(app_metadata or {"provider": "email", "providers": ["email"]}),
        "user_metadata": dict(user_metadata or {}),
        "role": role,
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": issued}],
        "session_id": str(uuid.uuid4()),
        "is_anonymous": False,
    }
    claims.update(extra_claims or {})
    return jwt.encode(claims, secret or jwt_secret(), algorithm="HS256")


def token_for_email(
    database_url: str,
    email: str,
    *,
    app_role: str | None = None,
    expires_in: int = DEFAULT_EXPIRES_IN,
    secret: str | None = None,
) -> str:
    """A token for the auth.users row with this e-mail (case-insensitive), claims as Supabase builds them.

    app_metadata comes from raw_app_meta_data like Supabase Auth does; `app_role="support"`
    forces app_metadata.role = "support", `app_role="landlord"` removes it.
    """
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(database_url, row_factory=dict_row, connect_timeout=5) as conn:
        row = conn.execute(
            "select id, email, phone, raw_app_meta_data, raw_user_meta_data from auth.users"
            " where lower(email) = lower(%s)",
            [email],
        ).fetchone()
    if row is None:
        raise LookupError(f"no auth.users row with e-mail {email!r}")
    app_metadata = dict(row["raw_app_meta_data"] or {"provider": "email"})
    app_metadata.setdefault("providers", [app_metadata.get("provider", "email")])
    if app_role == "support":
        app_metadata["role"] = "support"
    elif app_role == "landlord":
        app_metadata.pop("role", None)
    return mint_token(
        row["id"],
        email=row["email"],
        phone=row["phone"],
        app_metadata=app_metadata,
        user_metadata=row["raw_user_meta_data"] or {},
        expires_in=expires_in,
        secret=secret,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/dev-token",
        description="Print a local JWT for an auth.users e-mail (local Data API stand-in only).",
    )
    parser.add_argument("email", help="e-mail of an auth.users row, e.g. alice@zenrent.test")
    parser.add_argument(
        "--role",
        choices=APP_ROLES,
        default=None,
        help="app_metadata.role: 'support' for support staff (default: as stored)",
    )
    parser.add_argument(
        "--expires-in",
        type=int,
        default=DEFAULT_EXPIRES_IN,
        metavar="SECONDS",
        help=f"lifetime in seconds (default {DEFAULT_EXPIRES_IN})",
    )
    args = parser.parse_args(argv)
    if args.expires_in <= 0:
        parser.error("--expires-in must be a positive number of seconds")
    try:
        token = token_for_email(default_database_url(), args.email, app_role=args.role, expires_in=args.expires_in)
    except LookupError as exc:
        print(f"dev-token: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a CLI reports, it does not trace back
        print(f"dev-token: cannot read auth.users: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Configuration from environment variables.

Secrets fail closed: only ZR_ENV=development runs with the built-in local secrets below (public:
they are in this file, and the JWT one is the Supabase CLI's). Unset, or any other value, means
production rules: every secret from the environment, and none equal to a known public value.
`scripts/run`, `scripts/test` and the tests set ZR_ENV=development; a deploy does not.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

#: The local cluster's port when ZR_DB_PORT is not set (supabase/config.toml's [db] port).
DEFAULT_DB_PORT = "54322"
DEFAULT_DB_NAME = "postgres"

#: ZR_ENV's one value that allows the built-in secrets below. Unset, or anything else, is production.
DEVELOPMENT = "development"

#: ZR_DB_POOLER's one value: DATABASE_URL is a transaction-mode pooler (Supavisor on port 6543,
#: PgBouncer pool_mode = transaction). Unset means a direct connection (or a session-mode pooler).
#: docs/scaling.md (section 3) says what changes (app/db.py: make_pool).
POOLER_TRANSACTION = "transaction"

#: The Supabase CLI's local JWT secret (`supabase status` prints it): public, local only.
SUPABASE_CLI_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
#: Self-hosted Supabase's example JWT secret (docker/.env.example): public too.
SUPABASE_EXAMPLE_JWT_SECRET = "your-super-secret-jwt-token-with-at-least-32-characters-long"
#: The Supabase CLI's local service_role key, signed with its local JWT secret: public, local only.
SUPABASE_CLI_SERVICE_ROLE_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4MzgxMjk5Nn0."
    "EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU"
)


@dataclass(frozen=True)
class Secret:
    """A secret the services read from the environment, and its built-in development value."""

    env: str  # the environment variable
    attribute: str  # the Config field it fills
    development: str  # used only when ZR_ENV=development; public (it is in this file)


SECRETS = (
    Secret("WHATSAPP_APP_SECRET", "app_secret", "local-app-secret"),
    Secret("WHATSAPP_VERIFY_TOKEN", "verify_token", "local-verify-token"),
    Secret("WHATSAPP_ACCESS_TOKEN", "access_token", "local-access-token"),
    Secret("ZR_JWT_SECRET", "jwt_secret", SUPABASE_CLI_JWT_SECRET),
    Secret("ZR_SECRET_KEY", "secret_key", "local-flask-secret-key"),
    Secret("ZR_METRICS_TOKEN", "metrics_token", "local-metrics-token"),
)
#: Secrets only the media worker needs (app.media reads them; Config, the service and the sender do not).
WORKER_SECRETS = (Secret("SUPABASE_SERVICE_ROLE_KEY", "service_role_key", SUPABASE_CLI_SERVICE_ROLE_KEY),)
_SECRETS_BY_ENV = {s.env: s for s in (*SECRETS, *WORKER_SECRETS)}

#: Values anyone can read, refused outside development even when set explicitly.
PUBLIC_SECRETS = frozenset({*(s.development for s in (*SECRETS, *WORKER_SECRETS)), SUPABASE_EXAMPLE_JWT_SECRET})


def default_database_url(env: Mapping[str, str] | None = None) -> str:
    """DATABASE_URL if set, else the local cluster on ZR_DB_PORT (54322) and ZR_DB_NAME (postgres).

    The one Python copy of scripts/lib.sh's rule, which shell scripts use: keep the two in step.
    Every Python default (the service, the scripts, the tests, the benchmarks) calls this.
    """
    env = os.environ if env is None else env
    url = env.get("DATABASE_URL")
    if url:
        return url
    port = env.get("ZR_DB_PORT") or DEFAULT_DB_PORT
    name = env.get("ZR_DB_NAME") or DEFAULT_DB_NAME
    return f"postgresql://postgres:postgres@127.0.0.1:{port}/{name}?sslmode=disable"


def default_admin_database_url(database: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The local platform's superuser (supabase_admin) on the cluster of default_database_url():
    ZR_DB_ADMIN_URL if set, else supabase_admin with ZR_DB_ADMIN_PASSWORD (postgres). Only for what
    hosted Supabase does for us locally (the platform bootstrap) and for benchmark hygiene
    (CHECKPOINT, auto_explain); the project itself never connects as a superuser. `database`
    picks another database on the same cluster."""
    env = os.environ if env is None else env
    url = env.get("ZR_DB_ADMIN_URL")
    if not url:
        parts = urlsplit(default_database_url(env))
        password = quote(env.get("ZR_DB_ADMIN_PASSWORD") or "postgres", safe="")
        netloc = f"supabase_admin:{password}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    if database:
        parts = urlsplit(url)
        url = urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))
    return url


class ConfigError(RuntimeError):
    """The environment cannot run the service (e.g. a missing secret in production)."""


def db_pooler_from_env(env: Mapping[str, str]) -> str:
    """ZR_DB_POOLER: "" (unset: a direct connection) or "transaction" (checked by check_db_pooler)."""
    return (env.get("ZR_DB_POOLER") or "").strip().lower()


def check_db_pooler(value: str) -> None:
    if value not in ("", POOLER_TRANSACTION):
        raise ConfigError(
            f"ZR_DB_POOLER must be unset (a direct connection) or {POOLER_TRANSACTION!r} "
            "(Supavisor or PgBouncer in transaction mode)"
        )


def is_development(env: Mapping[str, str]) -> bool:
    """Only an explicit ZR_ENV=development is development; unset or any other value is production."""
    return env.get("ZR_ENV") == DEVELOPMENT


def _refusal(zr_env: str | None, missing: list[str], public: list[str]) -> ConfigError | None:
    """The error for secrets that break the production rules, or None when there are none."""
    if not missing and not public:
        return None
    problems = ([f"missing: {', '.join(missing)}"] if missing else []) + (
        [f"set to a public development value: {', '.join(public)}"] if public else []
    )
    shown = f"ZR_ENV={zr_env}" if zr_env else "ZR_ENV unset"
    return ConfigError(
        f"refusing to start with built-in or public secrets ({shown}: production rules; only ZR_ENV={DEVELOPMENT} "
        f"allows the local defaults): {'; '.join(problems)}"
    )


def secrets_from_env(
    env: Mapping[str, str] | None = None,
    names: Iterable[str] | None = None,
    *,
    also_required: Iterable[str] = (),
) -> dict[str, str]:
    """The one rule for secrets, applied by every entry point (the service, the sender, the local
    stand-ins): with ZR_ENV=development, each secret from the environment or else its built-in
    development value; otherwise (ZR_ENV unset or anything else) every secret must be set and
    none may be a public value (PUBLIC_SECRETS), or ConfigError names them. `names` picks
    secrets of SECRETS by variable (default: all); `also_required` are variables without a
    built-in value that production must set too (e.g. DATABASE_URL). `names` may also pick
    WORKER_SECRETS (the media worker's). Returns {variable: value}."""
    env = os.environ if env is None else env
    chosen = [_SECRETS_BY_ENV[n] for n in names] if names is not None else list(SECRETS)
    if is_development(env):
        return {s.env: env.get(s.env) or s.development for s in chosen}
    missing = [s.env for s in chosen if not env.get(s.env)] + [n for n in also_required if not env.get(n)]
    public = [s.env for s in chosen if env.get(s.env) in PUBLIC_SECRETS]
    error = _refusal(env.get("ZR_ENV"), missing, public)
    if error is not None:
        raise error
    return {s.env: env[s.env] for s in chosen}


def secret_from_env(name: str, env: Mapping[str, str] | None = None) -> str:
    """One secret under the rule of secrets_from_env, e.g. secret_from_env("ZR_JWT_SECRET")."""
    return secrets_from_env(env, [name])[name]


@dataclass(frozen=True)
class Config:
    """What the service and the sender run with. Build it with `from_env`, which applies the rule
    for secrets; a Config made by hand is checked by `validate` (create_app calls it): outside
    development its secrets must be set and not public, so the empty defaults below fail closed."""

    database_url: str = field(default_factory=default_database_url)
    environment: str = "production"
    app_secret: str = ""
    verify_token: str = ""
    phone_number_id: str = "100000000000001"
    access_token: str = ""
    graph_api_base: str = "http://127.0.0.1:8089"
    graph_api_version: str = "v21.0"
    max_body_bytes: int = 3 * 1024 * 1024
    db_pool_min: int = 1
    db_pool_max: int = 10
    db_pool_timeout_s: float = 5.0
    db_statement_timeout_ms: int = 5000
    # "" (direct) or POOLER_TRANSACTION: no prepared statements, no startup parameters, the
    # statement timeout set per transaction (app/db.py).
    db_pooler: str = ""
    # Outbound sender.
    sender_rate: float = 80.0  # messages per second (Meta's default per-number throughput)
    sender_concurrency: int = 8  # requests to the Graph API in flight at once
    sender_batch_size: int = 8  # messages claimed at a time
    sender_idle_s: float = 1.0  # pause when the queue is empty
    sender_http_timeout_s: float = 20.0
    sender_reconcile_interval_s: float = 60.0
    sender_stuck_timeout_s: int = 300  # a row `sending` for longer goes to needs_review
    # Support console: access tokens are verified with the project's JWT secret.
    jwt_secret: str = ""
    secret_key: str = ""
    cookie_secure: bool = True
    # /metrics answers only `Authorization: Bearer <metrics_token>`.
    metrics_token: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_development(self) -> bool:
        return self.environment == DEVELOPMENT

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        env = dict(os.environ if env is None else env)
        secrets = secrets_from_env(env, also_required=("DATABASE_URL",))
        d = cls()
        config = cls(
            database_url=default_database_url(env),
            environment=env.get("ZR_ENV") or "production",
            phone_number_id=env.get("WHATSAPP_PHONE_NUMBER_ID", d.phone_number_id),
            graph_api_base=env.get("GRAPH_API_BASE", d.graph_api_base).rstrip("/"),
            graph_api_version=env.get("GRAPH_API_VERSION", d.graph_api_version),
            db_pool_min=int(env.get("ZR_DB_POOL_MIN", d.db_pool_min)),
            db_pool_max=int(env.get("ZR_DB_POOL_MAX", d.db_pool_max)),
            db_pool_timeout_s=float(env.get("ZR_DB_POOL_TIMEOUT_S", d.db_pool_timeout_s)),
            db_statement_timeout_ms=int(env.get("ZR_DB_STATEMENT_TIMEOUT_MS", d.db_statement_timeout_ms)),
            db_pooler=db_pooler_from_env(env),
            sender_rate=float(env.get("ZR_SENDER_RATE", d.sender_rate)),
            sender_concurrency=int(env.get("ZR_SENDER_CONCURRENCY", d.sender_concurrency)),
            sender_batch_size=int(env.get("ZR_SENDER_BATCH_SIZE", d.sender_batch_size)),
            sender_idle_s=float(env.get("ZR_SENDER_IDLE_S", d.sender_idle_s)),
            sender_http_timeout_s=float(env.get("ZR_SENDER_HTTP_TIMEOUT_S", d.sender_http_timeout_s)),
            sender_reconcile_interval_s=float(env.get("ZR_SENDER_RECONCILE_INTERVAL_S", d.sender_reconcile_interval_s)),
            sender_stuck_timeout_s=int(env.get("ZR_SENDER_STUCK_TIMEOUT_S", d.sender_stuck_timeout_s)),
            cookie_secure=env.get("ZR_COOKIE_SECURE", "1") != "0",
            app_secret=secrets["WHATSAPP_APP_SECRET"],
            verify_token=secrets["WHATSAPP_VERIFY_TOKEN"],
            access_token=secrets["WHATSAPP_ACCESS_TOKEN"],
            jwt_secret=secrets["ZR_JWT_SECRET"],
            secret_key=secrets["ZR_SECRET_KEY"],
            metrics_token=secrets["ZR_METRICS_TOKEN"],
        )
        config.validate()
        return config

    def validate(self) -> None:
        if not self.is_development:
            values = {s.env: getattr(self, s.attribute) for s in SECRETS}
            error = _refusal(
                self.environment,
                [name for name, value in values.items() if not value],
                [name for name, value in values.items() if value in PUBLIC_SECRETS],
            )
            if error is not None:
                raise error
        check_db_pooler(self.db_pooler)
        if self.sender_rate <= 0:
            raise ConfigError("ZR_SENDER_RATE must be a positive number of messages per second")
        if self.sender_concurrency < 1 or self.sender_batch_size < 1:
            raise ConfigError("ZR_SENDER_CONCURRENCY and ZR_SENDER_BATCH_SIZE must be at least 1")
        if self.sender_stuck_timeout_s < 1:
            raise ConfigError("ZR_SENDER_STUCK_TIMEOUT_S must be at least 1 second")

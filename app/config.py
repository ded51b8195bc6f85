"""Configuration from environment variables, with safe local defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

#: The local cluster's port when ZR_DB_PORT is not set (supabase/config.toml's [db] port).
DEFAULT_DB_PORT = "54322"
DEFAULT_DB_NAME = "postgres"

# Secrets that must be set explicitly outside local development.
REQUIRED_IN_PRODUCTION = (
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_VERIFY_TOKEN",
    "WHATSAPP_ACCESS_TOKEN",
    "ZR_JWT_SECRET",
    "ZR_SECRET_KEY",
)


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


@dataclass(frozen=True)
class Config:
    database_url: str = field(default_factory=default_database_url)
    environment: str = "development"
    app_secret: str = "local-app-secret"
    verify_token: str = "local-verify-token"
    phone_number_id: str = "100000000000001"
    access_token: str = "local-access-token"
    graph_api_base: str = "http://127.0.0.1:8089"
    graph_api_version: str = "v21.0"
    max_body_bytes: int = 3 * 1024 * 1024
    db_pool_min: int = 1
    db_pool_max: int = 10
    db_pool_timeout_s: float = 5.0
    db_statement_timeout_ms: int = 5000
    # Outbound sender.
    sender_rate: float = 80.0  # messages per second (Meta's default per-number throughput)
    sender_concurrency: int = 8  # requests to the Graph API in flight at once
    sender_batch_size: int = 8  # messages claimed at a time
    sender_idle_s: float = 1.0  # pause when the queue is empty
    sender_http_timeout_s: float = 20.0
    sender_reconcile_interval_s: float = 60.0
    sender_stuck_timeout_s: int = 300  # a row `sending` for longer goes to needs_review
    # Support console: access tokens are verified with the project's JWT secret.
    jwt_secret: str = "super-secret-jwt-token-with-at-least-32-characters-long"
    secret_key: str = "local-flask-secret-key"
    cookie_secure: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Config:
        env = dict(os.environ if env is None else env)
        environment = env.get("ZR_ENV", "development")
        if environment == "production":
            missing = [name for name in REQUIRED_IN_PRODUCTION if not env.get(name)]
            if not env.get("DATABASE_URL"):
                missing.append("DATABASE_URL")
            if missing:
                raise ConfigError("refusing to start in production without: " + ", ".join(missing))
        d = cls()
        config = cls(
            database_url=default_database_url(env),
            environment=environment,
            app_secret=env.get("WHATSAPP_APP_SECRET", d.app_secret),
            verify_token=env.get("WHATSAPP_VERIFY_TOKEN", d.verify_token),
            phone_number_id=env.get("WHATSAPP_PHONE_NUMBER_ID", d.phone_number_id),
            access_token=env.get("WHATSAPP_ACCESS_TOKEN", d.access_token),
            graph_api_base=env.get("GRAPH_API_BASE", d.graph_api_base).rstrip("/"),
            graph_api_version=env.get("GRAPH_API_VERSION", d.graph_api_version),
            db_pool_min=int(env.get("ZR_DB_POOL_MIN", d.db_pool_min)),
            db_pool_max=int(env.get("ZR_DB_POOL_MAX", d.db_pool_max)),
            db_pool_timeout_s=float(env.get("ZR_DB_POOL_TIMEOUT_S", d.db_pool_timeout_s)),
            db_statement_timeout_ms=int(env.get("ZR_DB_STATEMENT_TIMEOUT_MS", d.db_statement_timeout_ms)),
            sender_rate=float(env.get("ZR_SENDER_RATE", d.sender_rate)),
            sender_concurrency=int(env.get("ZR_SENDER_CONCURRENCY", d.sender_concurrency)),
            sender_batch_size=int(env.get("ZR_SENDER_BATCH_SIZE", d.sender_batch_size)),
            sender_idle_s=float(env.get("ZR_SENDER_IDLE_S", d.sender_idle_s)),
            sender_http_timeout_s=float(env.get("ZR_SENDER_HTTP_TIMEOUT_S", d.sender_http_timeout_s)),
            sender_reconcile_interval_s=float(env.get("ZR_SENDER_RECONCILE_INTERVAL_S", d.sender_reconcile_interval_s)),
            sender_stuck_timeout_s=int(env.get("ZR_SENDER_STUCK_TIMEOUT_S", d.sender_stuck_timeout_s)),
            jwt_secret=env.get("ZR_JWT_SECRET", d.jwt_secret),
            secret_key=env.get("ZR_SECRET_KEY", d.secret_key),
            cookie_secure=env.get("ZR_COOKIE_SECURE", "1") != "0",
        )
        config.validate()
        return config

    def validate(self) -> None:
        if self.sender_rate <= 0:
            raise ConfigError("ZR_SENDER_RATE must be a positive number of messages per second")
        if self.sender_concurrency < 1 or self.sender_batch_size < 1:
            raise ConfigError("ZR_SENDER_CONCURRENCY and ZR_SENDER_BATCH_SIZE must be at least 1")
        if self.sender_stuck_timeout_s < 1:
            raise ConfigError("ZR_SENDER_STUCK_TIMEOUT_S must be at least 1 second")

"""Configuration from environment variables, with safe local defaults."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

LOCAL_DATABASE_URL = "postgresql://postgres:postgres@127.0.0.1:54322/postgres?sslmode=disable"

# Secrets that must be set explicitly outside local development.
REQUIRED_IN_PRODUCTION = ("WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN", "WHATSAPP_ACCESS_TOKEN")


class ConfigError(RuntimeError):
    """The environment cannot run the service (e.g. a missing secret in production)."""


@dataclass(frozen=True)
class Config:
    database_url: str = LOCAL_DATABASE_URL
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
    db_statement_timeout_ms: int = 5000
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Config":
        env = dict(os.environ if env is None else env)
        environment = env.get("ZR_ENV", "development")
        if environment == "production":
            missing = [name for name in REQUIRED_IN_PRODUCTION if not env.get(name)]
            if not env.get("DATABASE_URL"):
                missing.append("DATABASE_URL")
            if missing:
                raise ConfigError(
                    "refusing to start in production without: " + ", ".join(missing)
                )
        d = cls()
        return cls(
            database_url=env.get("DATABASE_URL", d.database_url),
            environment=environment,
            app_secret=env.get("WHATSAPP_APP_SECRET", d.app_secret),
            verify_token=env.get("WHATSAPP_VERIFY_TOKEN", d.verify_token),
            phone_number_id=env.get("WHATSAPP_PHONE_NUMBER_ID", d.phone_number_id),
            access_token=env.get("WHATSAPP_ACCESS_TOKEN", d.access_token),
            graph_api_base=env.get("GRAPH_API_BASE", d.graph_api_base).rstrip("/"),
            graph_api_version=env.get("GRAPH_API_VERSION", d.graph_api_version),
            db_pool_min=int(env.get("ZR_DB_POOL_MIN", d.db_pool_min)),
            db_pool_max=int(env.get("ZR_DB_POOL_MAX", d.db_pool_max)),
            db_statement_timeout_ms=int(env.get("ZR_DB_STATEMENT_TIMEOUT_MS", d.db_statement_timeout_ms)),
        )

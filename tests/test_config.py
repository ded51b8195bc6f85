"""Secrets fail closed (issue 15): only ZR_ENV=development runs with the built-in local secrets.

Unset, or any other value, is production: every secret from the environment, none equal to a
public value (the built-in ones, the Supabase CLI's local JWT secret, self-hosted Supabase's
example). One rule (app.config.secrets_from_env) for every entry point: the gunicorn factory,
`python -m app.sender`, the local Data API stand-in, token minting and scripts/send-webhook.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest

from app.config import (
    DEVELOPMENT,
    PUBLIC_SECRETS,
    SECRETS,
    SUPABASE_CLI_JWT_SECRET,
    SUPABASE_EXAMPLE_JWT_SECRET,
    Config,
    ConfigError,
)
from app.local import tokens
from app.local.dataapi import DataApiConfig
from app.service import create_app
from app.webhook import sign

ROOT = Path(__file__).resolve().parent.parent
SECRET_NAMES = [s.env for s in SECRETS]


def production_env(**overrides: str) -> dict[str, str]:
    """Everything production needs, each secret strong and random."""
    env = {"DATABASE_URL": "postgresql://postgres:postgres@127.0.0.1:1/postgres?sslmode=disable"}
    env.update({name: secrets.token_urlsafe(32) for name in SECRET_NAMES})
    env.update(overrides)
    return {k: v for k, v in env.items() if v}


def env_without_zr_env() -> dict[str, str]:
    """This process's environment minus ZR_ENV and every secret (a deploy that forgot them)."""
    return {k: v for k, v in os.environ.items() if k != "ZR_ENV" and k not in SECRET_NAMES}


# -- the rule ------------------------------------------------------------------------------------
def test_zr_env_unset_refuses_and_names_every_missing_secret():
    with pytest.raises(ConfigError) as raised:
        Config.from_env({})
    message = str(raised.value)
    assert "ZR_ENV unset" in message
    for name in [*SECRET_NAMES, "DATABASE_URL"]:
        assert name in message
    for s in SECRETS:
        assert s.development not in message  # names, never values


@pytest.mark.parametrize("zr_env", ["staging", "production", "Development", "dev", ""])
def test_any_other_zr_env_is_production(zr_env):
    with pytest.raises(ConfigError, match="WHATSAPP_APP_SECRET"):
        Config.from_env({"ZR_ENV": zr_env, "DATABASE_URL": "postgresql://x/y"})
    config = Config.from_env(production_env(ZR_ENV=zr_env))
    assert not config.is_development


def test_development_gets_the_built_in_secrets():
    config = Config.from_env({"ZR_ENV": DEVELOPMENT})
    assert config.is_development
    assert config.app_secret == "local-app-secret"
    assert config.jwt_secret == SUPABASE_CLI_JWT_SECRET
    assert config.metrics_token and config.secret_key and config.verify_token and config.access_token
    # an explicit value still wins in development
    assert Config.from_env({"ZR_ENV": DEVELOPMENT, "WHATSAPP_APP_SECRET": "mine"}).app_secret == "mine"


def test_production_takes_every_secret_from_the_environment():
    env = production_env(ZR_ENV="production")
    config = Config.from_env(env)
    assert (config.app_secret, config.verify_token, config.access_token) == (
        env["WHATSAPP_APP_SECRET"],
        env["WHATSAPP_VERIFY_TOKEN"],
        env["WHATSAPP_ACCESS_TOKEN"],
    )
    assert (config.jwt_secret, config.secret_key, config.metrics_token) == (
        env["ZR_JWT_SECRET"],
        env["ZR_SECRET_KEY"],
        env["ZR_METRICS_TOKEN"],
    )


def test_production_refuses_the_public_cli_jwt_secret_set_explicitly():
    with pytest.raises(ConfigError, match=r"public development value: ZR_JWT_SECRET$"):
        Config.from_env(production_env(ZR_ENV="production", ZR_JWT_SECRET=SUPABASE_CLI_JWT_SECRET))
    with pytest.raises(ConfigError, match="ZR_JWT_SECRET"):
        Config.from_env(production_env(ZR_JWT_SECRET=SUPABASE_EXAMPLE_JWT_SECRET))


@pytest.mark.parametrize("secret", SECRETS, ids=lambda s: s.env)
def test_production_refuses_every_built_in_value_even_set_explicitly(secret):
    with pytest.raises(ConfigError, match=secret.env):
        Config.from_env(production_env(ZR_ENV="staging", **{secret.env: secret.development}))
    assert secret.development in PUBLIC_SECRETS


def test_a_config_made_by_hand_fails_closed():
    with pytest.raises(ConfigError, match="WHATSAPP_APP_SECRET"):
        create_app(Config())


# -- every entry point ---------------------------------------------------------------------------
def test_the_gunicorn_factory_refuses_without_zr_env(monkeypatch):
    """app/gunicorn_conf.py serves app.service:create_app(), which reads the environment."""
    monkeypatch.delenv("ZR_ENV")
    for name in SECRET_NAMES:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="ZR_JWT_SECRET"):
        create_app()


def test_the_sender_refuses_to_start_without_zr_env():
    done = subprocess.run(
        [sys.executable, "-m", "app.sender"],
        env={**env_without_zr_env(), "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "event=sender.config_error" in done.stderr and "WHATSAPP_ACCESS_TOKEN" in done.stderr


def test_the_local_stand_ins_follow_the_same_rule():
    with pytest.raises(ConfigError, match="ZR_JWT_SECRET"):
        DataApiConfig.from_env({"DATABASE_URL": "postgresql://x/y"})
    with pytest.raises(ConfigError, match="ZR_JWT_SECRET"):
        tokens.jwt_secret({"ZR_ENV": "staging", "ZR_JWT_SECRET": SUPABASE_CLI_JWT_SECRET})
    assert tokens.jwt_secret({"ZR_ENV": DEVELOPMENT}) == SUPABASE_CLI_JWT_SECRET


def test_send_webhook_refuses_the_built_in_secret_outside_development(tmp_path):
    path = tmp_path / "p.json"
    path.write_text("{}")
    done = subprocess.run(
        [str(ROOT / "scripts" / "send-webhook"), str(path), "http://127.0.0.1:9/nowhere"],
        env={**env_without_zr_env(), "ZR_ENV": "production"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "WHATSAPP_APP_SECRET" in done.stderr


# -- the attacks, against a production service ------------------------------------------------------
def test_public_secrets_neither_sign_in_to_ops_nor_sign_webhooks():
    app = create_app(Config.from_env(production_env(ZR_ENV="production")))
    try:
        client = app.test_client()
        forged = jwt.encode(
            {
                "sub": "00000000-0000-4000-a000-000000000005",
                "role": "authenticated",
                "exp": int(time.time()) + 600,
                "app_metadata": {"role": "support"},
            },
            SUPABASE_CLI_JWT_SECRET,
            algorithm="HS256",
        )
        page = client.get("/ops/login", base_url="https://localhost")
        csrf = page.get_data(as_text=True).split('name="csrf" value="', 1)[1].split('"', 1)[0]
        resp = client.post("/ops/login", data={"csrf": csrf, "token": forged}, base_url="https://localhost")
        assert resp.status_code == 401
        body = b'{"object": "whatsapp_business_account", "entry": []}'
        resp = client.post(
            "/webhooks/whatsapp",
            data=body,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, "local-app-secret")},
        )
        assert resp.status_code == 401
    finally:
        app.extensions["zr_pool"].close(timeout=0)

"""The webhook service: the Flask application factory.

gunicorn: ``app.service:create_app()`` (app/gunicorn_conf.py names it; scripts/run uses that config).
Serves /webhooks/whatsapp, /healthz, /metrics and the support console /ops. Errors are JSON
everywhere except /ops, which gets HTML pages (app/http_errors.py).
"""

from __future__ import annotations

from flask import Flask

from .config import Config
from .db import make_pool
from .http_errors import register_error_handlers
from .logging_setup import configure_logging


def create_app(config: Config | None = None) -> Flask:
    """The service for `config`, or for the environment (Config.from_env). Either way the secrets
    are checked first (Config.validate): outside ZR_ENV=development a missing or public secret is
    a ConfigError and nothing starts."""
    config = config or Config.from_env()
    config.validate()
    configure_logging()

    app = Flask(__name__)
    app.config["ZR"] = config
    app.config["SECRET_KEY"] = config.secret_key
    app.config["SESSION_COOKIE_SECURE"] = config.cookie_secure
    app.config["SESSION_COOKIE_SAMESITE"] = "Strict"
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    pool = make_pool(config)
    pool.open(wait=False)
    app.extensions["zr_pool"] = pool

    from . import health, metrics, ops, webhook

    app.register_blueprint(health.bp)
    app.register_blueprint(webhook.bp)
    app.register_blueprint(ops.bp)
    metrics.init_app(app)
    register_error_handlers(app, html_pages={ops.URL_PREFIX: ops.error_page})
    return app

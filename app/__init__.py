"""ZenRent WhatsApp service: webhook shim, outbound sender and landlord client.

`create_app()` is the Flask application factory (gunicorn: "app:create_app()").
"""
from __future__ import annotations

import logging

from flask import Flask

from .config import Config
from .db import make_pool


def create_app(config: Config | None = None) -> Flask:
    config = config or Config.from_env()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    app = Flask(__name__)
    app.config["ZR"] = config
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    pool = make_pool(config)
    pool.open(wait=False)
    app.extensions["zr_pool"] = pool

    from . import health

    app.register_blueprint(health.bp)
    return app

"""ZenRent WhatsApp routing: the Python side of a Postgres-first service.

Deploy units, each importing only its own dependencies (pyproject.toml names them):

* ``app.client``  the landlord client library on supabase-py (the base install; no Flask, gunicorn
  or psycopg_pool), what landlord apps depend on;
* ``app.service`` the webhook service, a Flask application factory ``create_app()``
  (gunicorn ``app.service:create_app()``, see app/gunicorn_conf.py), with /healthz, /metrics and /ops;
* ``app.sender``  the outbound sender worker (``python -m app.sender``);
* ``app.local``   local stand-ins (Data API, token minting), never deployed.

This file imports nothing, so that ``import app.client`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .service import create_app as create_app


def __getattr__(name: str) -> object:
    # TODO(bench): bench/run.py still starts gunicorn with "app:create_app()". Remove this lazy
    # alias once it says "app.service:create_app()"; it imports Flask only when asked for.
    if name == "create_app":
        from .service import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

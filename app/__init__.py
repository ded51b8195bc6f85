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

"""GET /healthz: the process is up and the database answers."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from .db import ping

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    db_ok = ping(current_app.extensions["zr_pool"])
    body = {"status": "ok" if db_ok else "degraded", "database": "ok" if db_ok else "unreachable"}
    return jsonify(body), (200 if db_ok else 503)

"""The webhook benchmark's reference: a bare Flask endpoint that only checks the signature.

`POST /webhooks/whatsapp` verifies X-Hub-Signature-256 (HMAC-SHA256 of the raw body with
WHATSAPP_APP_SECRET, exactly as app/webhook.py does) and answers 200 without touching a
database: the most that Flask under gunicorn can do on this machine, against which the real
service is compared. Benchmark use only (gunicorn "bench.bare_app:create_app()").
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os

from flask import Flask, Response, jsonify, request

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/whatsapp"
SIGNATURE_HEADER = "X-Hub-Signature-256"


def signature_is_valid(body: bytes, header: str | None, secret: bytes) -> bool:
    if not header:
        return False
    expected = ("sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()).encode("ascii")
    return hmac.compare_digest(expected, header.strip().encode("utf-8", "replace"))


def create_app() -> Flask:
    secret = os.environ.get("WHATSAPP_APP_SECRET", "local-app-secret").encode("utf-8")
    app = Flask(__name__)

    @app.post(WEBHOOK_PATH)
    def receive() -> tuple[Response, int]:
        body = request.get_data(cache=False)
        if not signature_is_valid(body, request.headers.get(SIGNATURE_HEADER), secret):
            log.warning("event=bare.bad_signature length=%d", len(body))
            return jsonify({"error": {"code": "invalid_signature"}}), 401
        return jsonify({"ok": True}), 200

    return app

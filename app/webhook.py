"""The WhatsApp Cloud API webhook: Meta's verification handshake and signed event delivery.

POST bodies are verified (X-Hub-Signature-256, HMAC-SHA256 of the raw body with the app secret)
before anything is parsed, then handed whole to `public.ingest_whatsapp_webhook(payload)` in one
transaction as `service_role`. The response is 200 only once that transaction has committed;
anything the database did not commit answers 5xx so that Meta delivers again (delivery is
idempotent on the wamid, so a redelivered batch changes nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

import psycopg
from flask import Blueprint, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from psycopg_pool import PoolTimeout

from .config import Config
from .db import transaction_as
from .http_errors import error_response
from .logging_setup import log_event

log = logging.getLogger(__name__)

bp = Blueprint("webhook", __name__)

WEBHOOK_PATH = "/webhooks/whatsapp"
SIGNATURE_HEADER = "X-Hub-Signature-256"
SIGNATURE_PREFIX = "sha256="
WABA_OBJECT = "whatsapp_business_account"

# SQLSTATEs after which a redelivery can succeed: the database is down, restarting, overloaded
# or lost a race. Class 08 (connection exceptions) is matched by prefix.
_TRANSIENT_SQLSTATES = {
    "57014",  # statement timeout / query canceled
    "40001",  # serialization failure
    "40P01",  # deadlock detected
    "55P03",  # lock not available
    "53300",  # too many connections
    "57P01",  # admin shutdown
    "57P02",  # crash shutdown
    "57P03",  # cannot connect now (starting up / shutting down)
}


class WebhookError(Exception):
    """An error answered with an HTTP status and the service's JSON error shape (app/http_errors.py)."""

    def __init__(self, status: int, code: str, message: str, hint: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.hint = status, code, message, hint


def sign(body: bytes, secret: str) -> str:
    """The X-Hub-Signature-256 header value Meta sends for `body`."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def signature_is_valid(body: bytes, header: str | None, secret: str) -> bool:
    """Constant-time check of an X-Hub-Signature-256 header against the raw body."""
    if not header or not secret:
        return False
    expected = sign(body, secret).encode("ascii")
    provided = header.strip().encode("utf-8", "replace")
    return hmac.compare_digest(expected, provided)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")  # NaN / Infinity: Python accepts them, Postgres does not


def parse_payload(body: bytes) -> tuple[str, dict[str, Any]]:
    """The body as text (what the database receives, byte for byte) and as a JSON object."""
    try:
        text = body.decode("utf-8")
        payload = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:  # includes UnicodeDecodeError and JSONDecodeError
        raise WebhookError(
            400, "invalid_json", "request body is not UTF-8 JSON", "Meta sends application/json; check what was posted"
        ) from exc
    if not isinstance(payload, dict):
        raise WebhookError(
            400,
            "invalid_payload",
            "webhook payload must be a JSON object",
            'expected {"object": "whatsapp_business_account", "entry": [...]}',
        )
    return text, payload


def classify_db_error(exc: Exception) -> WebhookError:
    """Map a database failure to the answer Meta gets. Only 4xx for payloads that can never succeed."""
    if isinstance(exc, PoolTimeout):
        return WebhookError(
            503,
            "database_unavailable",
            "no database connection available in time",
            "Meta will redeliver; delivery is idempotent",
        )
    if isinstance(exc, psycopg.Error):
        sqlstate = exc.sqlstate or ""
        diag = exc.diag
        if sqlstate == "22023" or sqlstate.startswith("22"):
            # Malformed payload, wrong phone_number_id, or a value Postgres cannot store (\u0000).
            return WebhookError(400, sqlstate, diag.message_primary or "invalid webhook payload", diag.message_hint)
        if (
            sqlstate in _TRANSIENT_SQLSTATES
            or sqlstate.startswith("08")
            or isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))
        ):
            return WebhookError(
                503,
                sqlstate or "database_unavailable",
                "the database is unavailable or busy",
                "Meta will redeliver; delivery is idempotent",
            )
        return WebhookError(
            500,
            sqlstate or "database_error",
            "the database refused the webhook",
            "this is a bug or a missing migration; nothing was stored",
        )
    raise exc


def ingest(config: Config, text: str) -> dict[str, Any]:
    """One call of public.ingest_whatsapp_webhook in one transaction; returns its summary once committed."""
    pool = current_app.extensions["zr_pool"]
    try:
        with transaction_as(pool, "service_role") as conn:
            row = conn.execute("select public.ingest_whatsapp_webhook(%s::jsonb) as result", [text]).fetchone()
        # Leaving the block committed the transaction; only now is the summary true.
    except (psycopg.Error, PoolTimeout) as exc:
        raise classify_db_error(exc) from exc
    summary = row["result"] if row else None
    if not isinstance(summary, dict):
        raise WebhookError(500, "bad_summary", "ingest_whatsapp_webhook returned no summary")
    return summary


def log_summary(summary: dict[str, Any]) -> None:
    for m in summary.get("messages") or []:
        log_event(
            log,
            "webhook.message",
            wamid=m.get("wamid"),
            routing_status=m.get("routing_status"),
            message_id=m.get("message_id"),
            landlord_id=m.get("landlord_id"),
            duplicate=m.get("duplicate"),
        )
    for s in summary.get("statuses") or []:
        log_event(
            log,
            "webhook.status",
            wamid=s.get("wamid"),
            status=s.get("status"),
            applied=s.get("applied"),
            pending=s.get("pending"),
        )
    for e in summary.get("errors") or []:
        log_event(log, "webhook.error_item", level=logging.WARNING, detail=json.dumps(e, separators=(",", ":"))[:500])


@bp.get(WEBHOOK_PATH)
def verify_subscription() -> ResponseReturnValue:
    """Meta's handshake when the webhook is configured: echo hub.challenge for the right token."""
    config: Config = current_app.config["ZR"]
    mode = request.args.get("hub.mode")
    token = request.args.get("hub.verify_token") or ""
    challenge = request.args.get("hub.challenge")
    token_ok = hmac.compare_digest(token.encode("utf-8"), config.verify_token.encode("utf-8"))
    if mode != "subscribe" or not token_ok:
        log_event(log, "webhook.verify_rejected", level=logging.WARNING, mode=mode)
        return error_response(403, "verification_failed", "hub.mode or hub.verify_token is wrong")
    if challenge is None:
        return error_response(400, "missing_challenge", "hub.challenge is missing")
    log_event(log, "webhook.verified")
    return Response(challenge, status=200, mimetype="text/plain")


@bp.post(WEBHOOK_PATH)
def receive() -> ResponseReturnValue:
    config: Config = current_app.config["ZR"]
    try:
        # Reading the body enforces MAX_CONTENT_LENGTH (413) before anything else happens.
        body = request.get_data(cache=True, as_text=False, parse_form_data=False)
        if not signature_is_valid(body, request.headers.get(SIGNATURE_HEADER), config.app_secret):
            log_event(
                log,
                "webhook.bad_signature",
                level=logging.WARNING,
                present=request.headers.get(SIGNATURE_HEADER) is not None,
                length=len(body),
            )
            raise WebhookError(
                401,
                "invalid_signature",
                f"{SIGNATURE_HEADER} is missing or wrong",
                "sign the raw body with the app secret: sha256=<hex hmac>",
            )
        text, payload = parse_payload(body)
        if payload.get("object") != WABA_OBJECT:
            log_event(log, "webhook.ignored", object=str(payload.get("object"))[:100])
            return jsonify({"ignored": True}), 200
        summary = ingest(config, text)
    except WebhookError as err:
        level = logging.ERROR if err.status >= 500 else logging.WARNING
        log_event(log, "webhook.rejected", level=level, status=err.status, code=err.code, reason=err.message)
        return error_response(err.status, err.code, err.message, err.hint)
    log_summary(summary)
    return jsonify(summary), 200

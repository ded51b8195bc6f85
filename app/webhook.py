"""The WhatsApp Cloud API webhook: Meta's verification handshake and signed event delivery.

POST bodies are verified (X-Hub-Signature-256, HMAC-SHA256 of the raw body with the app secret)
before anything is parsed; an unsigned or badly signed body is refused (401) and never stored.
A signed body is then parsed with a depth limit, without recursion errors, and handed whole to
`public.ingest_whatsapp_webhook(payload)` in one transaction as `service_role`, with every NUL
(and lone UTF-16 surrogate) in its strings, keys included, replaced by U+FFFD: Postgres cannot
store those in jsonb and would refuse the whole batch, valid neighbours and all.

The response is 200 only once that transaction has committed; a database that is down or busy
answers 503 so that Meta delivers again (delivery is idempotent on the wamid, so a redelivered
batch changes nothing). A signed body the shim cannot use at all (not UTF-8 JSON, nested too
deep, not an object) can never succeed on a retry: it is kept with
`public.dead_letter_webhook(body, error)` for support (/ops/dead-letters) and answered 200
`{"dead_lettered": true}`. No input answers 5xx unless the database is unavailable (or the
service is broken: a missing migration, the central number not configured).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import re
from itertools import accumulate
from typing import Any

import psycopg
from flask import Blueprint, Response, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from psycopg_pool import PoolTimeout

from .config import Config
from .db import fetch_one_committed, transaction_as
from .http_errors import error_response
from .logging_setup import log_event

log = logging.getLogger(__name__)

bp = Blueprint("webhook", __name__)

WEBHOOK_PATH = "/webhooks/whatsapp"
SIGNATURE_HEADER = "X-Hub-Signature-256"
SIGNATURE_PREFIX = "sha256="
WABA_OBJECT = "whatsapp_business_account"

#: The deepest JSON nesting (objects and arrays) a body may have. Meta's deepest payloads are
#: about 12 levels: object > entry[] > entry > changes[] > change > value > messages[] >
#: message > contacts[] > contact > phones[] > phone (a shared contact card), or
#: ... > statuses[] > status > errors[] > error > error_data. 64 leaves room for whatever Meta
#: adds and keeps json.loads, which recurses, far from Python's recursion limit (~1,000).
MAX_JSON_DEPTH = 64
#: The longest error text kept with a dead letter.
MAX_ERROR_LENGTH = 300

# JSON strings (a closing quote optional, so that an unterminated one cannot make the scan
# quadratic), then everything that is not a bracket: what is left measures the nesting.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# Escapes Postgres cannot store in jsonb: \u0000 (22P05) and a UTF-16 surrogate without its pair
# (22P02). Escaped backslashes and surrogate pairs are matched first so that they stay as they are
# (`\\u0000` is a backslash and the text "u0000", not a NUL).
_UNSTORABLE_ESCAPE = re.compile(
    r"\\\\"
    r"|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
    r"|(?P<bad>\\u0000|\\u[dD][89a-fA-F][0-9a-fA-F]{2})"
)

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


class UnusableBody(Exception):
    """A signed body that no retry can make usable: kept as a dead letter and answered 200."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message[:MAX_ERROR_LENGTH]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")  # NaN / Infinity: Python accepts them, Postgres does not


def _finite_float(literal: str) -> float:
    """A JSON number with a fraction or exponent, refused outside the range of a double (RFC 8259
    section 6: what interoperates): Python would read 1e999 as inf and 1e-999 as 0.0, and Postgres
    refuses exponents that large (22003), which would refuse the whole batch."""
    value = float(literal)
    mantissa = literal.lower().partition("e")[0]
    if not math.isfinite(value) or (value == 0.0 and any(c in "123456789" for c in mantissa)):
        raise ValueError(f"number out of range: {literal[:40]}")
    return value


def json_depth(text: str) -> int:
    """How deeply objects and arrays nest in `text`, without recursion, in linear time. Exact for
    valid JSON; for anything else json.loads fails anyway."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(_DEPTH_STEP[c] for c in brackets), default=0)


def storable(text: str) -> str:
    """`text` (valid JSON) with every string escape Postgres cannot store in jsonb (NUL, a lone
    surrogate), in values and keys alike, replaced by U+FFFD; everything else as it came."""
    if "\\" not in text:
        return text
    return _UNSTORABLE_ESCAPE.sub(lambda m: "\\ufffd" if m["bad"] else m[0], text)


def parse_payload(body: bytes) -> tuple[str, dict[str, Any]]:
    """The body as the text the database receives (storable()) and as a JSON object; raises
    UnusableBody for what can never be stored: not UTF-8, nested too deep, not JSON, not an object."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnusableBody("invalid_json", f"the body is not UTF-8 (byte {exc.start})") from exc
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise UnusableBody("too_deep", f"JSON nested {depth} levels deep; at most {MAX_JSON_DEPTH}")
    try:
        payload = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, and int() over 4,300 digits
        raise UnusableBody("invalid_json", f"the body is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise UnusableBody("invalid_payload", f"the body is a JSON {type(payload).__name__}, not an object")
    return storable(text), payload


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
        # The row is returned only once the transaction has committed.
        row = fetch_one_committed(pool, "select public.ingest_whatsapp_webhook(%s::jsonb) as result", [text])
    except (psycopg.Error, PoolTimeout) as exc:
        raise classify_db_error(exc) from exc
    summary = row["result"] if row else None
    if not isinstance(summary, dict):
        raise WebhookError(500, "bad_summary", "ingest_whatsapp_webhook returned no summary")
    return summary


def dead_letter(body: bytes, unusable: UnusableBody) -> int:
    """Keep a signed body that can never be ingested (public.dead_letter_webhook); its id once committed."""
    pool = current_app.extensions["zr_pool"]
    # Text Postgres can store whatever the bytes were: invalid UTF-8 and NUL become U+FFFD.
    text = body.decode("utf-8", "replace").replace("\x00", "\ufffd")
    try:
        with transaction_as(pool, "service_role") as conn:
            row = conn.execute(
                "select public.dead_letter_webhook(%s, %s) as id", [text, f"{unusable.code}: {unusable.message}"]
            ).fetchone()
    except (psycopg.Error, PoolTimeout) as exc:
        raise classify_db_error(exc) from exc
    return int(row["id"]) if row else 0


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
    if summary.get("dead_letters"):
        log_event(log, "webhook.dead_letter_items", level=logging.WARNING, count=summary["dead_letters"])


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


def verified_body(config: Config) -> bytes:
    """The raw body, once its X-Hub-Signature-256 is right; WebhookError 401 otherwise (nothing is kept)."""
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
    return body


def dead_lettered(body: bytes, unusable: UnusableBody) -> ResponseReturnValue:
    """Keep the body for support and answer 200: Meta's retries could never make it usable."""
    kept = dead_letter(body, unusable)
    log_event(log, "webhook.dead_lettered", level=logging.WARNING, id=kept, code=unusable.code, length=len(body))
    g.zr_summary = {"dead_lettered": True}  # for the metrics (app/metrics.py), without parsing the answer again
    return jsonify(g.zr_summary), 200


@bp.post(WEBHOOK_PATH)
def receive() -> ResponseReturnValue:
    config: Config = current_app.config["ZR"]
    try:
        body = verified_body(config)
        try:
            text, payload = parse_payload(body)
        except UnusableBody as unusable:
            return dead_lettered(body, unusable)
        if payload.get("object") != WABA_OBJECT:
            log_event(log, "webhook.ignored", object=str(payload.get("object"))[:100])
            return jsonify({"ignored": True}), 200
        summary = ingest(config, text)
    except WebhookError as err:
        level = logging.ERROR if err.status >= 500 else logging.WARNING
        log_event(log, "webhook.rejected", level=level, status=err.status, code=err.code, reason=err.message)
        return error_response(err.status, err.code, err.message, err.hint)
    log_summary(summary)
    g.zr_summary = summary  # for the metrics (app/metrics.py), without parsing the answer again
    return jsonify(summary), 200

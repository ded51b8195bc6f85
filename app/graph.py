"""WhatsApp Cloud API (Graph API) client: request bodies as Meta documents them, and what each
answer means for a queued message.

Three outcomes of one POST /{version}/{phone_number_id}/messages:
  * `Sent(wamid)`      - Meta accepted the message;
  * `SendError(...)`   - Meta (or the network, before the request left) says it was not sent:
                         `retryable` tells the database whether to try again;
  * `Unknown(reason)`  - the request may have reached Meta (read timeout, connection dropped
                         after sending): the message is NOT retried, it stays `sending` until a
                         status webhook reconciles it or an operator checks it (at most once).
"""

from __future__ import annotations

import email.utils
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import requests
import urllib3.exceptions

# Meta error codes (https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes).
THROTTLE_CODES = {4, 80007, 130429}  # app / WABA / per-number throughput: the whole sender backs off
PAIR_RATE_LIMIT = 131056  # too many messages to the same recipient: this message backs off
WINDOW_CLOSED = 131047  # more than 24 h since the customer last wrote: only a template can go out
TRANSIENT_CODES = {1, 2, 131000, 131016, 133004}  # unknown / temporarily unavailable on Meta's side
AUTH_CODES = {0, 190}  # token missing, expired or revoked: fixable by an operator, not by the message
MAX_RETRY_AFTER_S = 3600


@dataclass(frozen=True)
class OutboundMessage:
    """One row returned by public.claim_outbound_messages(): `payload` is the exact JSON body to
    POST to /{phone_number_id}/messages, built in SQL (private.outbound_payload)."""

    id: UUID
    to_phone: str
    kind: str
    attempt_count: int
    payload: Mapping[str, Any]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> OutboundMessage:
        payload = row.get("payload")
        if isinstance(payload, str):
            payload = json.loads(payload)
        return cls(
            id=row["id"],
            to_phone=row["to_phone"],
            kind=row["kind"],
            attempt_count=row.get("attempt_count") or 0,
            payload=payload if isinstance(payload, Mapping) else {},
        )


@dataclass(frozen=True)
class Sent:
    wamid: str


@dataclass(frozen=True)
class SendError:
    code: int
    title: str
    message: str | None = None
    retryable: bool = False
    retry_after_seconds: int | None = None
    throttled: bool = False  # the whole sender should pause (not only this message)
    http_status: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The `error` argument of public.complete_outbound_message."""
        return {
            "code": self.code,
            "title": self.title,
            "message": self.message,
            "retryable": self.retryable,
            "retry_after_seconds": self.retry_after_seconds,
        }


@dataclass(frozen=True)
class Unknown:
    reason: str


Outcome = Sent | SendError | Unknown


class InvalidMessage(ValueError):
    """A claimed row that cannot be turned into a Graph API request (never retried)."""


MEDIA_MESSAGE_TYPES = ("image", "video", "audio", "document")  # what a landlord's file goes out as


def checked_payload(msg: OutboundMessage) -> Mapping[str, Any]:
    """The claimed message's payload, posted unchanged, once it is sure to be a message Meta can
    take: for the right recipient, of a known type with its object, and naming the message in
    biz_opaque_callback_data (how a crashed send is reconciled from status webhooks).

    A landlord's file (claim kind 'media') goes out as an image, video, audio or document message
    whose object is `{"id": <Meta's media id>, "caption"?: ...}`, sent by id (audio has no caption)."""
    p = msg.payload
    kind = p.get("type")
    if p.get("messaging_product") != "whatsapp" or not msg.to_phone or p.get("to") != msg.to_phone:
        raise InvalidMessage("payload is not a WhatsApp message for this recipient")
    known = kind in MEDIA_MESSAGE_TYPES if msg.kind == "media" else kind in ("text", "template", "interactive")
    if (
        not isinstance(kind, str)
        or not known
        or (msg.kind != "media" and kind != msg.kind)
        or not isinstance(p.get(kind), Mapping)
    ):
        raise InvalidMessage(f"payload of unknown or incomplete type {kind!r}")
    if kind == "text" and not str(p["text"].get("body") or "").strip():
        raise InvalidMessage("text message without a body")
    if kind == "template" and not (p["template"].get("name") and p["template"].get("language")):
        raise InvalidMessage("template message without name or language")
    if msg.kind == "media":
        _check_media_object(kind, p[kind])
    if p.get("biz_opaque_callback_data") != str(msg.id):
        raise InvalidMessage("payload does not name its message in biz_opaque_callback_data")
    return p


def _check_media_object(kind: str, media: Mapping[str, Any]) -> None:
    """`{"id", "caption"?}` with a non-empty id: never a link (Meta would fetch it) or anything else."""
    media_id = media.get("id")
    if not isinstance(media_id, str) or not media_id.strip():
        raise InvalidMessage(f"{kind} message without a media id")
    allowed = {"id"} if kind == "audio" else {"id", "caption"}
    if set(media) - allowed:
        raise InvalidMessage(f"{kind} message with {sorted(set(media) - allowed)} besides {sorted(allowed)}")
    if "caption" in media and not isinstance(media["caption"], str):
        raise InvalidMessage(f"{kind} message whose caption is not text")


def parse_retry_after(value: str | None, now: float | None = None) -> int | None:
    """Retry-After as whole seconds (delta-seconds or an HTTP date), capped; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(int(value), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now_dt = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return max(0, min(int((when - now_dt).total_seconds() + 0.999), MAX_RETRY_AFTER_S))


def _meta_error(body: Any) -> dict[str, Any]:
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def classify_response(status: int, headers: Mapping[str, str], body: Any) -> Outcome:
    """What one Graph API answer means for the message (see the module docstring)."""
    if 200 <= status < 300:
        messages = body.get("messages") if isinstance(body, dict) else None
        wamid = (
            messages[0].get("id") if isinstance(messages, list) and messages and isinstance(messages[0], dict) else None
        )
        if wamid:
            return Sent(str(wamid))
        # Accepted but no id: it may go out, so it must not be retried; a status webhook or a person decides.
        return Unknown(f"HTTP {status} without messages[0].id")

    err = _meta_error(body)
    code = err.get("code")
    code = int(code) if isinstance(code, (int, str)) and str(code).lstrip("-").isdigit() else status
    title = str(err.get("error_user_title") or err.get("message") or f"HTTP {status}")
    details = err.get("error_data", {}).get("details") if isinstance(err.get("error_data"), dict) else None
    message = details or err.get("error_user_msg")
    retry_after = parse_retry_after(headers.get("Retry-After"))

    if status == 429 or code in THROTTLE_CODES:
        return SendError(
            code, title, message, retryable=True, retry_after_seconds=retry_after, throttled=True, http_status=status
        )
    if code == PAIR_RATE_LIMIT:
        return SendError(code, title, message, retryable=True, retry_after_seconds=retry_after, http_status=status)
    if code == WINDOW_CLOSED:
        # (complete_outbound_message adds the same hint to the stored title.)
        hint = "24-hour customer service window closed: send a template instead"
        return SendError(code, title, f"{hint}. {message}" if message else hint, retryable=False, http_status=status)
    if status >= 500 or code in TRANSIENT_CODES:
        return SendError(code, title, message, retryable=True, retry_after_seconds=retry_after, http_status=status)
    if status == 401 or code in AUTH_CODES:
        # The access token is wrong or expired: no message can go out until an operator fixes it,
        # so pause everything and keep the message for later instead of failing the whole queue.
        return SendError(
            code,
            f"{title} (check WHATSAPP_ACCESS_TOKEN)",
            message,
            retryable=True,
            retry_after_seconds=retry_after or 60,
            throttled=True,
            http_status=status,
        )
    return SendError(code, title, message, retryable=False, http_status=status)


def _not_sent(exc: BaseException) -> bool:
    """True when the request certainly never reached the server (safe to retry)."""
    if isinstance(
        exc,
        (
            requests.exceptions.ConnectTimeout,
            requests.exceptions.SSLError,
            requests.exceptions.ProxyError,
            requests.exceptions.InvalidURL,
        ),
    ):
        return True
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(
            cur, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError, ConnectionRefusedError)
        ):
            return True
        if isinstance(cur, urllib3.exceptions.MaxRetryError) and cur.reason is not None:
            cur = cur.reason
            continue
        nxt = cur.args[0] if cur.args and isinstance(cur.args[0], BaseException) else None
        cur = nxt or cur.__cause__ or cur.__context__
    return False


class GraphClient:
    """POSTs messages to {base}/{version}/{phone_number_id}/messages with the bearer token."""

    def __init__(
        self,
        base: str,
        version: str,
        phone_number_id: str,
        access_token: str,
        timeout_s: float = 20.0,
        connect_timeout_s: float = 5.0,
    ):
        self.url = f"{base.rstrip('/')}/{version}/{phone_number_id}/messages"
        self._headers = {"Authorization": f"Bearer {access_token}", "Content-Type": "application/json"}
        self._timeout = (connect_timeout_s, timeout_s)
        self._local = threading.local()  # one requests.Session per sending thread

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def send(self, body: Mapping[str, Any]) -> Outcome:
        try:
            resp = self._session().post(self.url, data=json.dumps(body), headers=self._headers, timeout=self._timeout)
        except requests.RequestException as exc:
            if _not_sent(exc):
                return SendError(0, f"network error before sending: {type(exc).__name__}", retryable=True)
            return Unknown(f"network error after sending: {type(exc).__name__}")
        try:
            parsed: Any = resp.json()
        except ValueError:
            parsed = None
        return classify_response(resp.status_code, resp.headers, parsed)

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()

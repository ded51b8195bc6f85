"""The landlord's side of ZenRent WhatsApp, over Supabase's Data API with supabase-py.

Every call runs under the landlord's own access token (role `authenticated`), so Postgres RLS
and the landlord RPCs decide what is visible and allowed; this class adds no filter of its own
that RLS would not also enforce. It reads `whatsapp_conversations` and `whatsapp_messages`
with explicit column lists and changes things only through the public RPCs:
set_whatsapp_opt_in, send_whatsapp_message, send_whatsapp_media, send_whatsapp_template,
start_whatsapp_conversation, mark_conversation_read, set_conversation_status; files go to the
landlord's own outbound folder in Storage, under the same token.

Works unchanged against a hosted project (SUPABASE_URL, SUPABASE_ANON_KEY) and against the
local stand-in (scripts/dataapi: http://127.0.0.1:54321 with the CLI's local anon key).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal
from uuid import UUID, uuid4

import httpx
import jwt
from postgrest import APIError
from storage3.exceptions import StorageApiError
from supabase.lib.client_options import DEFAULT_HEADERS

from supabase import Client, ClientOptions, create_client

from ..media_types import EXTENSIONS, base_mime_type, sendable_kind
from .errors import InvalidValue, LandlordClientError, NotFound, WrongState, from_api_error, from_storage_error
from .events import landlord_topic
from .models import CONVERSATION_COLUMNS, MESSAGE_COLUMNS, Conversation, Message, OptInState, Page

ConversationOrder = Literal["recent", "unread_first"]
CONVERSATION_STATUSES = ("active", "archived", "blocked")
MAX_PAGE_SIZE = 500
_CURSOR_VERSION = 1


def _quote(value: str) -> str:
    """A value inside a PostgREST logic tree, double-quoted so that , . : ( ) are literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _as_uuid(value: UUID | str, what: str) -> str:
    try:
        return str(UUID(str(value)))
    except ValueError:
        raise InvalidValue(None, f"{what} must be a uuid, got {value!r}") from None


def _encode_cursor(payload: Mapping[str, Any]) -> str:
    raw = json.dumps({"v": _CURSOR_VERSION, **payload}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, kind: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(payload, dict) or payload.get("v") != _CURSOR_VERSION or payload.get("k") != kind:
            raise ValueError("not a cursor of this list")
        UUID(payload["i"])
        return payload
    except (ValueError, KeyError, TypeError):
        raise InvalidValue(None, "invalid page cursor", "pass next_cursor from the previous page unchanged") from None


#: The private Storage bucket of WhatsApp media (created by migration 20261129170000).
MEDIA_BUCKET = "whatsapp-media"


class LandlordClient:
    """A landlord's typed client. Create one per signed-in landlord (per access token)."""

    def __init__(
        self,
        url: str,
        key: str,
        access_token: str,
        *,
        user_id: UUID | str | None = None,
        retry: bool = True,
        timeout_s: float = 30.0,
    ):
        """`key` is the project's anon (publishable) key; `access_token` the landlord's JWT.

        `user_id` defaults to the token's `sub` (read without verifying: the Data API verifies
        it; here it only names the Realtime topic). `retry`: supabase-py retries idempotent reads
        that got 503/520 or a network error.
        """
        if user_id is None:
            claims = jwt.decode(access_token, options={"verify_signature": False})
            user_id = claims.get("sub")
        self.user_id = UUID(str(user_id)) if user_id else None
        self._http = httpx.Client(timeout=timeout_s, follow_redirects=True)
        self._sb = create_client(
            url,
            key,
            ClientOptions(
                headers={**DEFAULT_HEADERS, "Authorization": f"Bearer {access_token}"},
                auto_refresh_token=False,
                persist_session=False,
                postgrest_client_retry=retry,
                httpx_client=self._http,
            ),
        )

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def __enter__(self) -> LandlordClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @classmethod
    def from_env(cls, access_token: str, env: Mapping[str, str] | None = None, **kwargs: Any) -> LandlordClient:
        """SUPABASE_URL and SUPABASE_ANON_KEY (or SUPABASE_KEY) from the environment."""
        env = os.environ if env is None else env
        url = env.get("SUPABASE_URL")
        key = env.get("SUPABASE_ANON_KEY") or env.get("SUPABASE_KEY")
        if not url or not key:
            raise ValueError("set SUPABASE_URL and SUPABASE_ANON_KEY")
        return cls(url, key, access_token, **kwargs)

    @property
    def supabase(self) -> Client:
        """The underlying supabase-py client (same token), for anything this class does not cover."""
        return self._sb

    # -- plumbing ---------------------------------------------------------------------------
    @staticmethod
    def _execute(builder: Any) -> Any:
        try:
            return builder.execute().data
        except APIError as exc:
            raise from_api_error(exc) from exc

    def _rpc(self, fn: str, params: Mapping[str, Any]) -> Any:
        return self._execute(self._sb.rpc(fn, dict(params)))

    # -- conversations ----------------------------------------------------------------------
    def list_conversations(
        self,
        *,
        status: str | Sequence[str] | None = ("active",),
        order: ConversationOrder = "recent",
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page[Conversation]:
        """The landlord's conversations, newest activity first, keyset-paginated.

        `status`: one status, several, or None for all. `order="unread_first"` lists the
        conversations with unread messages first (each group newest first). Pass the page's
        `next_cursor` back (with the same status and order) for the next page.
        """
        statuses = self._statuses(status)
        self._check_limit(limit)
        if order not in ("recent", "unread_first"):
            raise InvalidValue(None, f"unknown order {order!r}", "recent or unread_first")
        segments = ["all"] if order == "recent" else ["unread", "read"]
        after = _decode_cursor(cursor, f"conversations:{order}") if cursor else None
        start = segments.index(after["s"]) if after and after.get("s") in segments else 0
        found: list[tuple[str, Conversation]] = []
        for segment in segments[start:]:
            keyset = after if after and after["s"] == segment else None
            rows = self._conversation_rows(statuses, segment, keyset, limit + 1 - len(found))
            found.extend((segment, Conversation.from_row(r)) for r in rows)
            if len(found) > limit:
                break
        next_cursor = None
        if len(found) > limit:
            segment, last = found[limit - 1]
            next_cursor = _encode_cursor(
                {"k": f"conversations:{order}", "s": segment, "t": last.raw_last_message_at, "i": str(last.id)}
            )
        return Page([c for _, c in found[:limit]], next_cursor)

    def _conversation_rows(
        self, statuses: list[str] | None, segment: str, keyset: Mapping[str, Any] | None, n: int
    ) -> list[dict[str, Any]]:
        q = self._sb.table("whatsapp_conversations").select(",".join(CONVERSATION_COLUMNS))
        if statuses is not None:
            q = q.in_("status", statuses)
        if segment == "unread":
            q = q.gt("unread_count", 0)
        elif segment == "read":
            q = q.eq("unread_count", 0)
        if keyset is not None:
            # After (t, id) in "last_message_at desc nulls last, id desc" order.
            if keyset["t"] is None:
                q = q.is_("last_message_at", "null").lt("id", keyset["i"])
            else:
                t = _quote(keyset["t"])
                q = q.or_(
                    f"last_message_at.lt.{t},and(last_message_at.eq.{t},id.lt.{keyset['i']}),last_message_at.is.null"
                )
        q = q.order("last_message_at", desc=True, nullsfirst=False).order("id", desc=True).limit(n)
        rows: list[dict[str, Any]] = self._execute(q)
        return rows

    def get_conversation(self, conversation_id: UUID | str) -> Conversation:
        """One of the landlord's conversations; NotFound for any other id (whoever owns it)."""
        cid = _as_uuid(conversation_id, "conversation_id")
        rows = self._execute(
            self._sb.table("whatsapp_conversations").select(",".join(CONVERSATION_COLUMNS)).eq("id", cid).limit(1)
        )
        if not rows:
            raise NotFound(None, "conversation not found")
        return Conversation.from_row(rows[0])

    def unread_total(self) -> int:
        """Unread tenant messages across the landlord's conversations that are not blocked."""
        total, last_id = 0, None
        while True:
            q = (
                self._sb.table("whatsapp_conversations")
                .select("id,unread_count")
                .gt("unread_count", 0)
                .neq("status", "blocked")
            )
            if last_id is not None:
                q = q.gt("id", last_id)
            rows = self._execute(q.order("id").limit(MAX_PAGE_SIZE))
            total += sum(int(r["unread_count"]) for r in rows)
            if len(rows) < MAX_PAGE_SIZE:
                return total
            last_id = rows[-1]["id"]

    def mark_read(self, conversation_id: UUID | str) -> None:
        self._rpc("mark_conversation_read", {"conversation_id": _as_uuid(conversation_id, "conversation_id")})

    def set_status(self, conversation_id: UUID | str, status: str) -> None:
        """active, archived (reopens on the tenant's next message) or blocked (stops routing from them)."""
        self._rpc(
            "set_conversation_status",
            {"conversation_id": _as_uuid(conversation_id, "conversation_id"), "status": status},
        )

    def archive(self, conversation_id: UUID | str) -> None:
        self.set_status(conversation_id, "archived")

    def unarchive(self, conversation_id: UUID | str) -> None:
        self.set_status(conversation_id, "active")

    def block(self, conversation_id: UUID | str) -> None:
        self.set_status(conversation_id, "blocked")

    def unblock(self, conversation_id: UUID | str) -> None:
        self.set_status(conversation_id, "active")

    def start_conversation(self, tenant_id: UUID | str) -> UUID:
        """Open (or find) the conversation with one of the landlord's tenants with an active lease."""
        return UUID(self._rpc("start_whatsapp_conversation", {"tenant_id": _as_uuid(tenant_id, "tenant_id")}))

    # -- messages ---------------------------------------------------------------------------
    def list_messages(
        self, conversation_id: UUID | str, *, limit: int = 50, cursor: str | None = None
    ) -> Page[Message]:
        """A conversation's messages, newest first, keyset-paginated on (sent_at, id).

        Another landlord's conversation id gives an empty page (RLS shows none of its rows).
        """
        cid = _as_uuid(conversation_id, "conversation_id")
        self._check_limit(limit)
        q = self._sb.table("whatsapp_messages").select(",".join(MESSAGE_COLUMNS)).eq("conversation_id", cid)
        if cursor:
            after = _decode_cursor(cursor, f"messages:{cid}")
            t = _quote(after["t"])
            q = q.or_(f"sent_at.lt.{t},and(sent_at.eq.{t},id.lt.{after['i']})")
        rows = self._execute(q.order("sent_at", desc=True).order("id", desc=True).limit(limit + 1))
        messages = [Message.from_row(r) for r in rows]
        next_cursor = None
        if len(messages) > limit:
            last = messages[limit - 1]
            next_cursor = _encode_cursor({"k": f"messages:{cid}", "t": last.raw_sent_at, "i": str(last.id)})
        return Page(messages[:limit], next_cursor)

    def get_message(self, message_id: UUID | str) -> Message:
        mid = _as_uuid(message_id, "message_id")
        rows = self._execute(
            self._sb.table("whatsapp_messages").select(",".join(MESSAGE_COLUMNS)).eq("id", mid).limit(1)
        )
        if not rows:
            raise NotFound(None, "message not found")
        return Message.from_row(rows[0])

    def media_url(self, message: Message, expires_in: int = 300) -> str:
        """A signed, expiring URL of a message's stored media (photo, voice note, document).

        Storage signs it only if RLS lets this landlord read the object (their own message's media).
        Raises WrongState while the media is pending or failed (`media_error` says why), NotFound
        for a message without media.
        """
        if message.media_status is None:
            raise NotFound(None, "this message has no media")
        if message.media_status != "stored" or not message.media_path:
            raise WrongState(None, f"the media is {message.media_status}", details=message.media_error)
        signed = self._sb.storage.from_(MEDIA_BUCKET).create_signed_url(message.media_path, expires_in)
        return str(signed.get("signedURL") or signed.get("signedUrl"))

    def download_media(self, message: Message) -> bytes:
        """The bytes of a message's stored media, through a signed URL (see media_url)."""
        import httpx

        response = httpx.get(self.media_url(message, expires_in=60), timeout=60)
        response.raise_for_status()
        return response.content

    def send_message(self, conversation_id: UUID | str, body: str) -> UUID:
        """Queue a reply; it goes out as "From <your name> via ZenRent:" + newline + body.

        Raises WindowClosed (send a template), Blocked, TenantOptedOut, NotOptedIn,
        EmptyBody, MessageTooLong (both InvalidValue) or NotFound (see errors.py).
        """
        return UUID(
            self._rpc(
                "send_whatsapp_message", {"conversation_id": _as_uuid(conversation_id, "conversation_id"), "body": body}
            )
        )

    def send_media(
        self,
        conversation_id: UUID | str,
        data: bytes,
        filename: str,
        mime_type: str,
        caption: str | None = None,
    ) -> UUID:
        """Send a file (a photo, video, audio or document) in one of your conversations.

        The bytes go to your outbound folder, ``whatsapp-media/<your uid>/outbound/<uuid>.<ext>``
        (the extension from `mime_type`), under your own token: Storage RLS lets you write only
        there. Then ``send_whatsapp_media`` queues the message under the rules of text (the
        24-hour window, opt-in, STOP, blocked); the caption goes out below "From <your name> via
        ZenRent:" (audio carries none). The media worker puts the file with WhatsApp, then it is
        sent; follow it with `get_message` (`media_status`, `status`, `media_error`).

        `filename` (the name on your device) is never used in the path nor sent: the tenant sees
        the generated name. Raises InvalidValue before uploading anything for a type WhatsApp
        cannot send or a file over its cap (image 5 MiB, audio and video 16 MiB, document 100 MiB);
        then as send_message: WindowClosed, Blocked, TenantOptedOut, NotOptedIn, MessageTooLong
        (caption plus signature over 1,024 characters), NotFound; the uploaded file is removed
        again when the message is refused. Storage's refusals are typed by `from_storage_error`.
        """
        cid = _as_uuid(conversation_id, "conversation_id")
        if self.user_id is None:
            raise LandlordClientError(None, "the access token has no sub: it names no outbound folder")
        mime = base_mime_type(mime_type)
        sendable = sendable_kind(mime)
        if sendable is None:
            raise InvalidValue(
                None,
                f"WhatsApp cannot send a {mime or 'file without a type'} file",
                "images (JPEG, PNG), MP4/3GPP video, AAC/AMR/MP3/M4A/OGG audio, PDF, text and Office documents",
            )
        media_type, kind = sendable
        if not data:
            raise InvalidValue(None, "the file is empty")
        if len(data) > kind.cap:
            raise InvalidValue(None, f"the file is {len(data):,} bytes: over WhatsApp's {kind.cap:,} for {media_type}")
        path = f"{self.user_id}/outbound/{uuid4()}.{EXTENSIONS[mime]}"
        bucket = self._sb.storage.from_(MEDIA_BUCKET)
        try:
            bucket.upload(path, data, {"content-type": mime})
        except StorageApiError as exc:
            raise from_storage_error(exc) from exc
        try:
            sent = self._rpc("send_whatsapp_media", {"conversation_id": cid, "storage_path": path, "caption": caption})
        except LandlordClientError:
            with contextlib.suppress(StorageApiError, httpx.HTTPError):
                bucket.remove([path])  # refused: nothing will read it
            raise
        return UUID(sent)

    def send_template(
        self, conversation_id: UUID | str, template_name: str, language: str, parameters: Iterable[str] = ()
    ) -> UUID:
        """Queue an approved template (allowed outside the 24 h window); your name is its first parameter."""
        return UUID(
            self._rpc(
                "send_whatsapp_template",
                {
                    "conversation_id": _as_uuid(conversation_id, "conversation_id"),
                    "template_name": template_name,
                    "language": language,
                    "parameters": list(parameters),
                },
            )
        )

    # -- the landlord's settings ------------------------------------------------------------
    def settings(self) -> OptInState:
        rows = self._execute(
            self._sb.table("user_profiles")
            .select("whatsapp_enabled,whatsapp_opted_in_at,whatsapp_notifications_enabled")
            .limit(1)
        )
        if not rows:
            raise NotFound(None, "no landlord profile for this user", "create the user_profiles row first")
        return OptInState.from_row(rows[0])

    def set_opt_in(self, enabled: bool, notifications: bool | None = None) -> OptInState:
        """Opt in to (or out of) the central number; opting out cancels queued replies at once."""
        params: dict[str, Any] = {"enabled": enabled}
        if notifications is not None:
            params["notifications_enabled"] = notifications
        return OptInState.from_row(self._rpc("set_whatsapp_opt_in", params))

    def opt_in(self, notifications: bool | None = None) -> OptInState:
        return self.set_opt_in(True, notifications)

    def opt_out(self) -> OptInState:
        return self.set_opt_in(False)

    def set_notifications(self, enabled: bool) -> OptInState:
        """Turn new-message notifications on or off, leaving the opt-in as it is."""
        return self.set_opt_in(self.settings().whatsapp_enabled, enabled)

    # -- Realtime ---------------------------------------------------------------------------
    @property
    def realtime_topic(self) -> str:
        """The landlord's private Realtime topic, ``landlord:<uid>`` (live events: AsyncLandlordClient)."""
        if self.user_id is None:
            raise LandlordClientError(None, "the access token has no sub: it names no landlord topic")
        return landlord_topic(self.user_id)

    # -- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _statuses(status: str | Sequence[str] | None) -> list[str] | None:
        if status is None:
            return None
        statuses = [status] if isinstance(status, str) else list(status)
        unknown = [s for s in statuses if s not in CONVERSATION_STATUSES]
        if unknown or not statuses:
            raise InvalidValue(
                None, f"invalid conversation status {unknown or statuses!r}", "one or more of active, archived, blocked"
            )
        return statuses

    @staticmethod
    def _check_limit(limit: int) -> None:
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidValue(None, f"limit must be between 1 and {MAX_PAGE_SIZE}")


__all__ = ["CONVERSATION_STATUSES", "MAX_PAGE_SIZE", "ConversationOrder", "LandlordClient"]

"""What arrives live: Realtime topics and the typed events the database broadcasts on them.

The database sends Broadcast messages (realtime.send) on private topics; Realtime lets a socket
join a topic only if RLS on realtime.messages allows that user to read it:

* ``landlord:<user uuid>``: one landlord's inbox. Events ``message``, ``message_status``,
  ``conversation``.
* ``support``: support staff (JWT app_metadata.role = support). Events ``held``, ``resolved``.

Payloads carry only what the landlord (or support) may see: never Meta's raw element, the
routing metadata or another landlord's data. `parse_event` turns a broadcast into one of the
dataclasses below; an event this version does not know, or a payload it cannot read, is passed
through as `RawEvent` (a newer database never breaks an older client).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from .models import _required_ts, _ts, _uuid

log = logging.getLogger("app.client.events")

LANDLORD_TOPIC_PREFIX = "landlord:"
#: The topic support staff receive held and resolved messages on.
SUPPORT_TOPIC = "support"


def landlord_topic(user_id: UUID | str) -> str:
    """The private topic of one landlord's inbox: ``landlord:<user uuid>``."""
    return f"{LANDLORD_TOPIC_PREFIX}{UUID(str(user_id))}"


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None


@dataclass(frozen=True)
class MessageEvent:
    """``message`` on landlord:<id>: a message was filed in the landlord's inbox (either direction)."""

    name: ClassVar[str] = "message"
    id: UUID
    conversation_id: UUID | None
    direction: str  # incoming | outgoing
    type: str
    body: str | None
    status: str | None
    sent_at: datetime
    is_from_tenant: bool
    media_mime_type: str | None
    media_caption: str | None = None
    landlord_signature: str | None = None
    #: The conversation's list entry after this message (unread count, preview): one event carries both.
    conversation: ConversationEvent | None = None

    @classmethod
    def from_payload(cls, p: Mapping[str, Any]) -> MessageEvent:
        conv = p.get("conversation")
        return cls(
            id=UUID(str(p["id"])),
            conversation_id=_uuid(p.get("conversation_id")),
            direction=str(p["direction"]),
            type=str(p["type"]),
            body=p.get("body"),
            status=p.get("status"),
            sent_at=_required_ts(p["sent_at"]),
            is_from_tenant=bool(p["is_from_tenant"]),
            media_mime_type=p.get("media_mime_type"),
            media_caption=p.get("media_caption"),
            landlord_signature=p.get("landlord_signature"),
            conversation=ConversationEvent.from_payload(conv) if isinstance(conv, Mapping) else None,
        )


@dataclass(frozen=True)
class MessageStatusEvent:
    """``message_status`` on landlord:<id>: Meta reported a reply sent, delivered, read or failed."""

    name: ClassVar[str] = "message_status"
    id: UUID
    conversation_id: UUID | None
    status: str
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None
    error_code: int | None

    @classmethod
    def from_payload(cls, p: Mapping[str, Any]) -> MessageStatusEvent:
        return cls(
            id=UUID(str(p["id"])),
            conversation_id=_uuid(p.get("conversation_id")),
            status=str(p["status"]),
            delivered_at=_ts(p.get("delivered_at")),
            read_at=_ts(p.get("read_at")),
            failed_at=_ts(p.get("failed_at")),
            error_code=_int(p.get("error_code")),
        )


@dataclass(frozen=True)
class ConversationEvent:
    """``conversation`` on landlord:<id>: a conversation's list entry changed (unread, preview, status)."""

    name: ClassVar[str] = "conversation"
    id: UUID
    tenant_phone: str
    status: str  # active | archived | blocked
    unread_count: int
    last_message_at: datetime | None
    last_message_preview: str | None

    @classmethod
    def from_payload(cls, p: Mapping[str, Any]) -> ConversationEvent:
        return cls(
            id=UUID(str(p["id"])),
            tenant_phone=str(p["tenant_phone"]),
            status=str(p["status"]),
            unread_count=int(p["unread_count"]),
            last_message_at=_ts(p.get("last_message_at")),
            last_message_preview=p.get("last_message_preview"),
        )


@dataclass(frozen=True)
class HeldEvent:
    """``held`` on support: a tenant message is held for support (no landlord could be decided)."""

    name: ClassVar[str] = "held"
    id: UUID
    routing_status: str
    tenant_phone: str
    sent_at: datetime
    preview: str | None

    @classmethod
    def from_payload(cls, p: Mapping[str, Any]) -> HeldEvent:
        return cls(
            id=UUID(str(p["id"])),
            routing_status=str(p["routing_status"]),
            tenant_phone=str(p["tenant_phone"]),
            sent_at=_required_ts(p["sent_at"]),
            preview=p.get("preview"),
        )


@dataclass(frozen=True)
class ResolvedEvent:
    """``resolved`` on support: a held message left the queue (filed, dismissed, ...)."""

    name: ClassVar[str] = "resolved"
    id: UUID
    routing_status: str

    @classmethod
    def from_payload(cls, p: Mapping[str, Any]) -> ResolvedEvent:
        return cls(id=UUID(str(p["id"])), routing_status=str(p["routing_status"]))


@dataclass(frozen=True)
class RawEvent:
    """An event this client does not model (or could not read): its name and payload as sent."""

    event: str
    payload: dict[str, Any] = field(default_factory=dict)


RealtimeEvent = MessageEvent | MessageStatusEvent | ConversationEvent | HeldEvent | ResolvedEvent | RawEvent

_TYPED: dict[str, Any] = {
    cls.name: cls for cls in (MessageEvent, MessageStatusEvent, ConversationEvent, HeldEvent, ResolvedEvent)
}
#: The event names this version types.
EVENT_NAMES = tuple(_TYPED)


def parse_event(event: str, payload: Mapping[str, Any]) -> RealtimeEvent:
    """The typed event for a broadcast; RawEvent for an unknown event or an unreadable payload."""
    cls = _TYPED.get(event)
    if cls is not None:
        try:
            parsed: RealtimeEvent = cls.from_payload(payload)
            return parsed
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("event=realtime.unreadable_payload broadcast_event=%s error=%s", event, type(exc).__name__)
    return RawEvent(event, dict(payload))


__all__ = [
    "EVENT_NAMES",
    "LANDLORD_TOPIC_PREFIX",
    "SUPPORT_TOPIC",
    "ConversationEvent",
    "HeldEvent",
    "MessageEvent",
    "MessageStatusEvent",
    "RawEvent",
    "RealtimeEvent",
    "ResolvedEvent",
    "landlord_topic",
    "parse_event",
]

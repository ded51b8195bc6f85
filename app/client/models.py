"""What the landlord client returns: plain, immutable dataclasses built from Data API rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar
from uuid import UUID

T = TypeVar("T")

#: Meta's customer service window: free text only within 24 h of the tenant's last message.
SERVICE_WINDOW = timedelta(hours=24)

#: Columns the client reads: what the models hold. `select=*` works too (what landlords must not
#: see is in private.whatsapp_message_details, outside the Data API), but a client asks only for
#: what it uses.
CONVERSATION_COLUMNS = (
    "id",
    "landlord_id",
    "tenant_id",
    "tenant_phone",
    "property_id",
    "status",
    "unread_count",
    "last_message_at",
    "last_inbound_at",
    "last_message_preview",
    "created_at",
    "updated_at",
)
MESSAGE_COLUMNS = (
    "id",
    "conversation_id",
    "landlord_id",
    "tenant_id",
    "property_id",
    "wamid",
    "direction",
    "is_from_tenant",
    "type",
    "body",
    "landlord_signature",
    "media_id",
    "media_mime_type",
    "media_caption",
    "media_filename",
    "media_status",
    "media_path",
    "media_size",
    "media_error",
    "reply_to_message_id",
    "contact_name",
    "status",
    "outbound_kind",
    "template",
    "sent_at",
    "delivered_at",
    "read_at",
    "failed_at",
    "error_code",
    "error_title",
)


def _ts(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _required_ts(value: Any) -> datetime:
    """A timestamp the column never leaves null."""
    ts = _ts(value)
    if ts is None:
        raise ValueError("a required timestamp is missing")
    return ts


def _uuid(value: Any) -> UUID | None:
    return UUID(str(value)) if value is not None else None


@dataclass(frozen=True)
class Conversation:
    """A landlord's conversation with one tenant phone through the central ZenRent number."""

    id: UUID
    landlord_id: UUID
    tenant_id: UUID | None
    tenant_phone: str
    property_id: UUID | None
    status: str  # active | archived | blocked
    unread_count: int
    last_message_at: datetime | None
    last_inbound_at: datetime | None
    last_message_preview: str | None
    created_at: datetime
    updated_at: datetime
    raw_last_message_at: str | None = field(default=None, repr=False, compare=False)  # exact, for cursors

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Conversation:
        return cls(
            id=UUID(row["id"]),
            landlord_id=UUID(row["landlord_id"]),
            tenant_id=_uuid(row.get("tenant_id")),
            tenant_phone=row["tenant_phone"],
            property_id=_uuid(row.get("property_id")),
            status=row["status"],
            unread_count=int(row["unread_count"]),
            last_message_at=_ts(row.get("last_message_at")),
            last_inbound_at=_ts(row.get("last_inbound_at")),
            last_message_preview=row.get("last_message_preview"),
            created_at=_required_ts(row["created_at"]),
            updated_at=_required_ts(row["updated_at"]),
            raw_last_message_at=row.get("last_message_at"),
        )

    @property
    def window_expires_at(self) -> datetime | None:
        """When free text stops being possible, from this conversation's last tenant message.

        A hint for the UI only: the database decides (it counts only messages the tenant sent
        through the central number, not imported multi-WABA history); a refused reply raises
        WindowClosed, and a template (send_template) is allowed at any time.
        """
        return self.last_inbound_at + SERVICE_WINDOW if self.last_inbound_at else None


@dataclass(frozen=True)
class Message:
    """One message of a conversation; `body` is the landlord's own text, without the signature."""

    id: UUID
    conversation_id: UUID | None
    direction: str  # incoming | outgoing
    is_from_tenant: bool | None
    type: str
    body: str | None
    landlord_signature: str | None
    status: str | None  # received | queued | sending | sent | delivered | read | failed | needs_review
    sent_at: datetime
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None
    error_code: int | None
    error_title: str | None
    wamid: str | None
    outbound_kind: str | None
    template: Any
    media_id: str | None
    media_mime_type: str | None
    media_caption: str | None
    media_filename: str | None
    reply_to_message_id: UUID | None
    contact_name: str | None
    media_status: str | None = None  # pending | stored | failed (null: no media)
    media_path: str | None = None  # the object in the whatsapp-media bucket, once stored
    media_size: int | None = None
    media_error: str | None = None  # why the media could not be kept (docs/media.md), when failed
    raw_sent_at: str = field(default="", repr=False, compare=False)  # exact, for cursors

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Message:
        return cls(
            id=UUID(row["id"]),
            conversation_id=_uuid(row.get("conversation_id")),
            direction=row["direction"],
            is_from_tenant=row.get("is_from_tenant"),
            type=row["type"],
            body=row.get("body"),
            landlord_signature=row.get("landlord_signature"),
            status=row.get("status"),
            sent_at=_required_ts(row["sent_at"]),
            delivered_at=_ts(row.get("delivered_at")),
            read_at=_ts(row.get("read_at")),
            failed_at=_ts(row.get("failed_at")),
            error_code=row.get("error_code"),
            error_title=row.get("error_title"),
            wamid=row.get("wamid"),
            outbound_kind=row.get("outbound_kind"),
            template=row.get("template"),
            media_id=row.get("media_id"),
            media_mime_type=row.get("media_mime_type"),
            media_caption=row.get("media_caption"),
            media_filename=row.get("media_filename"),
            reply_to_message_id=_uuid(row.get("reply_to_message_id")),
            media_status=row.get("media_status"),
            media_path=row.get("media_path"),
            media_size=row.get("media_size"),
            media_error=row.get("media_error"),
            contact_name=row.get("contact_name"),
            raw_sent_at=row["sent_at"],
        )

    @property
    def outgoing(self) -> bool:
        return self.direction == "outgoing"

    @property
    def text_as_sent(self) -> str | None:
        """What the tenant's phone shows: the signature line, a newline, then the body."""
        if self.landlord_signature and self.body is not None:
            return f"{self.landlord_signature}\n{self.body}"
        return self.body


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a keyset-paginated list; pass `next_cursor` back to get the next page."""

    items: list[T]
    next_cursor: str | None

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None


@dataclass(frozen=True)
class OptInState:
    whatsapp_enabled: bool
    whatsapp_opted_in_at: datetime | None
    whatsapp_notifications_enabled: bool
    cancelled_messages: int = 0  # queued replies cancelled by opting out (set_whatsapp_opt_in's answer)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> OptInState:
        return cls(
            whatsapp_enabled=bool(row["whatsapp_enabled"]),
            whatsapp_opted_in_at=_ts(row.get("whatsapp_opted_in_at")),
            whatsapp_notifications_enabled=bool(row["whatsapp_notifications_enabled"]),
            cancelled_messages=int(row.get("cancelled_messages") or 0),
        )

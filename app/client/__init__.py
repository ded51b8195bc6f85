"""The landlord's typed client for ZenRent WhatsApp, built on supabase-py (see landlord.py).

    from app.client import LandlordClient, WindowClosed
    client = LandlordClient(SUPABASE_URL, SUPABASE_ANON_KEY, access_token)
    page = client.list_conversations(order="unread_first")

    live = await AsyncLandlordClient.create(SUPABASE_URL, SUPABASE_ANON_KEY, access_token)
    await live.channel().on_broadcast("message", on_message).subscribe()   # landlord:<uid>, private

This package is the base install of the project (pyproject.toml): it needs supabase-py and
PyJWT only and never imports Flask, gunicorn or psycopg (tests/test_client_import.py proves it).
"""

from .errors import (
    Blocked,
    Conflict,
    ConsentDeclined,
    ConsentPending,
    DailyLimitReached,
    EmptyBody,
    InvalidPhone,
    InvalidValue,
    LandlordClientError,
    MessageTooLong,
    NoActiveLease,
    NoLandlordProfile,
    NotAllowed,
    NotAuthenticated,
    NotFound,
    NotOptedIn,
    TenantOptedOut,
    TooManyPendingFiles,
    WindowClosed,
    WrongState,
    base_class,
    error_class,
    from_api_error,
    from_storage_error,
)
from .events import (
    EVENT_NAMES,
    SUPPORT_TOPIC,
    ConversationEvent,
    HeldEvent,
    MessageEvent,
    MessageStatusEvent,
    RawEvent,
    RealtimeEvent,
    ResolvedEvent,
    landlord_topic,
    parse_event,
)
from .landlord import CONVERSATION_STATUSES, MAX_PAGE_SIZE, ConversationOrder, LandlordClient
from .models import (
    CONVERSATION_COLUMNS,
    MESSAGE_COLUMNS,
    Conversation,
    Message,
    OptInState,
    Page,
)
from .realtime import (
    AsyncLandlordClient,
    LiveChannel,
    RealtimeSubscriptionError,
    SubscriptionRefused,
    SubscriptionTimedOut,
)

__all__ = [
    "CONVERSATION_COLUMNS",
    "CONVERSATION_STATUSES",
    "EVENT_NAMES",
    "MAX_PAGE_SIZE",
    "MESSAGE_COLUMNS",
    "SUPPORT_TOPIC",
    "AsyncLandlordClient",
    "Blocked",
    "Conflict",
    "ConsentDeclined",
    "ConsentPending",
    "Conversation",
    "ConversationEvent",
    "ConversationOrder",
    "DailyLimitReached",
    "EmptyBody",
    "HeldEvent",
    "InvalidPhone",
    "InvalidValue",
    "LandlordClient",
    "LandlordClientError",
    "LiveChannel",
    "Message",
    "MessageEvent",
    "MessageStatusEvent",
    "MessageTooLong",
    "NoActiveLease",
    "NoLandlordProfile",
    "NotAllowed",
    "NotAuthenticated",
    "NotFound",
    "NotOptedIn",
    "OptInState",
    "Page",
    "RawEvent",
    "RealtimeEvent",
    "RealtimeSubscriptionError",
    "ResolvedEvent",
    "SubscriptionRefused",
    "SubscriptionTimedOut",
    "TenantOptedOut",
    "TooManyPendingFiles",
    "WindowClosed",
    "WrongState",
    "base_class",
    "error_class",
    "from_api_error",
    "from_storage_error",
    "landlord_topic",
    "parse_event",
]

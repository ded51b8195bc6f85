"""The landlord's typed client for ZenRent WhatsApp, built on supabase-py (see landlord.py).

    from app.client import LandlordClient, WindowClosed
    client = LandlordClient(SUPABASE_URL, SUPABASE_ANON_KEY, access_token)
    page = client.list_conversations(order="unread_first")

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
    WindowClosed,
    WrongState,
    base_class,
    error_class,
    from_api_error,
)
from .landlord import CONVERSATION_STATUSES, MAX_PAGE_SIZE, ConversationOrder, LandlordClient
from .models import (
    CONVERSATION_COLUMNS,
    MESSAGE_COLUMNS,
    Conversation,
    Message,
    OptInState,
    Page,
    RealtimeChannel,
)

__all__ = [
    "CONVERSATION_COLUMNS",
    "CONVERSATION_STATUSES",
    "MAX_PAGE_SIZE",
    "MESSAGE_COLUMNS",
    "Blocked",
    "Conflict",
    "ConsentDeclined",
    "ConsentPending",
    "Conversation",
    "ConversationOrder",
    "DailyLimitReached",
    "EmptyBody",
    "InvalidPhone",
    "InvalidValue",
    "LandlordClient",
    "LandlordClientError",
    "Message",
    "MessageTooLong",
    "NoActiveLease",
    "NoLandlordProfile",
    "NotAllowed",
    "NotAuthenticated",
    "NotFound",
    "NotOptedIn",
    "OptInState",
    "Page",
    "RealtimeChannel",
    "TenantOptedOut",
    "WindowClosed",
    "WrongState",
    "base_class",
    "error_class",
    "from_api_error",
]

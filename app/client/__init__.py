"""The landlord's typed client for ZenRent WhatsApp, built on supabase-py (see landlord.py).

    from app.client import LandlordClient, WindowClosed
    client = LandlordClient(SUPABASE_URL, SUPABASE_ANON_KEY, access_token)
    page = client.list_conversations(order="unread_first")
"""
from .errors import (Blocked, Conflict, InvalidValue, LandlordClientError, NotAllowed, NotAuthenticated,
                     NotFound, NotOptedIn, TenantOptedOut, WindowClosed, WrongState, error_class,
                     from_api_error)
from .landlord import CONVERSATION_STATUSES, MAX_PAGE_SIZE, ConversationOrder, LandlordClient
from .models import (CONVERSATION_COLUMNS, MESSAGE_COLUMNS, Conversation, Message, OptInState, Page,
                     RealtimeChannel)

__all__ = [
    "LandlordClient", "ConversationOrder", "CONVERSATION_STATUSES", "MAX_PAGE_SIZE",
    "Conversation", "Message", "OptInState", "Page", "RealtimeChannel", "CONVERSATION_COLUMNS", "MESSAGE_COLUMNS",
    "LandlordClientError", "NotFound", "NotAllowed", "InvalidValue", "WrongState", "WindowClosed",
    "TenantOptedOut", "Blocked", "NotOptedIn", "Conflict", "NotAuthenticated", "error_class", "from_api_error",
]

"""Typed errors of the landlord client.

The landlord RPCs raise from a small fixed set of SQLSTATEs (STYLE.md): 42501 not allowed,
P0002 not found, 22023 invalid value, 55000 wrong state, 23505 duplicate. The Data API
(PostgREST) returns them as `{"code", "message", "details", "hint"}`; supabase-py raises
`postgrest.APIError`; `from_api_error` turns that into one of the classes below, keeping the
SQLSTATE, message, hint and details. 55000 is refined from the message into WindowClosed
(send a template instead), TenantOptedOut, Blocked or NotOptedIn.

HTTP status codes are deliberately not used: PostgREST answers P0002 and 55000 with HTTP 500,
so only the SQLSTATE says what happened.
"""
from __future__ import annotations

from typing import Any


class LandlordClientError(Exception):
    """Any refusal from the Data API, with the SQLSTATE (or PGRSTxxx code) and Postgres' texts."""

    def __init__(self, sqlstate: str | None, message: str | None, hint: str | None = None, details: Any = None):
        self.sqlstate = sqlstate
        self.message = message or ""
        self.hint = hint
        self.details = details
        text = f"{sqlstate}: {self.message}" if sqlstate else self.message
        super().__init__(f"{text} (hint: {hint})" if hint else text)


class NotFound(LandlordClientError):
    """P0002: no such row among yours (another landlord's rows are "not found", never "forbidden")."""


class NotAllowed(LandlordClientError):
    """42501: the role may not do this (e.g. no landlord profile, or a service-role-only RPC)."""


class InvalidValue(LandlordClientError):
    """22023 (or another class-22 error such as 22P02 for a malformed uuid): a bad argument."""


class WrongState(LandlordClientError):
    """55000: allowed in general, not in the current state."""


class WindowClosed(WrongState):
    """The 24-hour customer service window is closed: send a template (send_template) instead."""


class TenantOptedOut(WrongState):
    """The tenant sent STOP; nothing can be sent until they send START."""


class Blocked(WrongState):
    """The conversation is blocked; unblock it to send."""


class NotOptedIn(WrongState):
    """The landlord has WhatsApp turned off; opt in first."""


class Conflict(LandlordClientError):
    """23505: a duplicate."""


class NotAuthenticated(LandlordClientError):
    """The access token was refused (PGRST301 invalid, PGRST302 required, PGRST303 expired or wrong claims)."""


_WRONG_STATE_BY_MESSAGE: tuple[tuple[str, type[WrongState]], ...] = (
    ("customer service window", WindowClosed),
    ("opted out", TenantOptedOut),
    ("blocked", Blocked),
    ("turned off", NotOptedIn),
)


def error_class(sqlstate: str | None, message: str | None) -> type[LandlordClientError]:
    code = sqlstate or ""
    text = (message or "").lower()
    if code == "P0002":
        return NotFound
    if code == "42501":
        return NotAllowed
    if code == "23505":
        return Conflict
    if code == "55000":
        for needle, cls in _WRONG_STATE_BY_MESSAGE:
            if needle in text:
                return cls
        return WrongState
    if code.startswith("22"):
        return InvalidValue
    if code in ("PGRST301", "PGRST302", "PGRST303"):
        return NotAuthenticated
    return LandlordClientError


def from_api_error(exc: Any) -> LandlordClientError:
    """A postgrest.APIError (or anything with code/message/hint/details) as a typed error."""
    sqlstate = getattr(exc, "code", None)
    message = getattr(exc, "message", None)
    cls = error_class(sqlstate, message)
    return cls(sqlstate, message, getattr(exc, "hint", None), getattr(exc, "details", None))

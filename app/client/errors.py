"""Typed errors of the landlord client, chosen by code, never by message text.

Every refusal our SQL raises carries a SQLSTATE from a small fixed set (42501 not allowed, P0002
not found, 22023 invalid value, 23505 duplicate, 55000 wrong state, ...) and a stable keyword in
its DETAIL (``window_closed``, ``tenant_opted_out``, ...). The Data API (PostgREST) returns them
as ``{"code": SQLSTATE, "message", "details": keyword, "hint"}``; supabase-py raises
``postgrest.APIError``; `from_api_error` turns that into one of the classes below by the pair
(SQLSTATE, keyword), keeping the SQLSTATE, message, hint and details.

The table of keywords is docs/errors.md; `_BY_KEYWORD` below is its client side. A keyword this
version does not know falls back to the SQLSTATE's base class (e.g. WrongState for 55000), so a
newer database never breaks an older client. The message is for people: no branch here reads it.

HTTP status codes are deliberately not used: PostgREST answers P0002 and 55000 with HTTP 500,
so only the SQLSTATE says what happened.
"""

from __future__ import annotations

from typing import Any


class LandlordClientError(Exception):
    """Any refusal from the Data API, with the SQLSTATE (or PGRSTxxx code) and Postgres' texts.

    `keyword` is the stable detail keyword (docs/errors.md) when the database sent one.
    """

    def __init__(self, sqlstate: str | None, message: str | None, hint: str | None = None, details: Any = None):
        self.sqlstate = sqlstate
        self.message = message or ""
        self.hint = hint
        self.details = details
        self.keyword: str | None = details if isinstance(details, str) else None
        text = f"{sqlstate}: {self.message}" if sqlstate else self.message
        super().__init__(f"{text} (hint: {hint})" if hint else text)


# -- 42501 -------------------------------------------------------------------------------------
class NotAllowed(LandlordClientError):
    """42501: the role may not do this (not signed in, support staff only, append-only rows, ...)."""


class NoLandlordProfile(NotAllowed):
    """42501 no_landlord_profile: signed in, but there is no user_profiles row for this user."""


# -- P0002 -------------------------------------------------------------------------------------
class NotFound(LandlordClientError):
    """P0002: no such row among yours (another landlord's rows are "not found", never "forbidden")."""


# -- class 22 (22023) and 23514 ----------------------------------------------------------------
class InvalidValue(LandlordClientError):
    """22023 (or another class-22 error such as 22P02 for a malformed uuid, or 23514): a bad argument."""


class MessageTooLong(InvalidValue):
    """22023 message_too_long: body plus the "From <name> via ZenRent:" signature exceeds 4096 characters."""


class EmptyBody(InvalidValue):
    """22023 empty_body: the body has no visible character."""


class InvalidPhone(InvalidValue):
    """22023 invalid_phone: the tenant has no valid phone number."""


# -- 23505 -------------------------------------------------------------------------------------
class Conflict(LandlordClientError):
    """23505: a duplicate."""


# -- 55000 -------------------------------------------------------------------------------------
class WrongState(LandlordClientError):
    """55000: allowed in general, not in the current state."""


class WindowClosed(WrongState):
    """55000 window_closed: the 24-hour customer service window is closed: send a template instead."""


class TenantOptedOut(WrongState):
    """55000 tenant_opted_out: the tenant sent STOP; nothing can be sent until they send START."""


class Blocked(WrongState):
    """55000 conversation_blocked: the conversation is blocked; unblock it to send."""


class NotOptedIn(WrongState):
    """55000 landlord_not_opted_in: the landlord has WhatsApp turned off; opt in first."""


class NoActiveLease(WrongState):
    """55000 no_active_lease: the tenant has no active lease with this landlord."""


class ConsentPending(WrongState):
    """55000 consent_pending: the tenant has not confirmed this landlord yet; a consent request is queued."""


class ConsentDeclined(WrongState):
    """55000 consent_declined: the tenant declined or reported this landlord."""


class DailyLimitReached(WrongState):
    """55000 daily_limit_reached: the landlord's daily cap on business-initiated messages is reached."""


class TooManyPendingFiles(WrongState):
    """55000 too_many_pending_files: the landlord's files waiting for upload to WhatsApp are at the cap."""


# -- PostgREST ---------------------------------------------------------------------------------
class NotAuthenticated(LandlordClientError):
    """The access token was refused (PGRST301 invalid, PGRST302 required, PGRST303 expired or wrong claims)."""


#: The class of a code when its keyword is missing or unknown.
_BASE_BY_SQLSTATE: dict[str, type[LandlordClientError]] = {
    "42501": NotAllowed,
    "P0002": NotFound,
    "22023": InvalidValue,
    "23505": Conflict,
    "23514": InvalidValue,
    "55000": WrongState,
    "PGRST301": NotAuthenticated,
    "PGRST302": NotAuthenticated,
    "PGRST303": NotAuthenticated,
}

#: (SQLSTATE, detail keyword) -> class: the client side of the table in docs/errors.md.
_BY_KEYWORD: dict[tuple[str, str], type[LandlordClientError]] = {
    ("42501", "not_signed_in"): NotAllowed,
    ("42501", "no_landlord_profile"): NoLandlordProfile,
    ("42501", "support_only"): NotAllowed,
    ("42501", "not_allowed"): NotAllowed,
    ("42501", "append_only"): NotAllowed,
    ("P0002", "not_found"): NotFound,
    ("22023", "invalid_value"): InvalidValue,
    ("22023", "message_too_long"): MessageTooLong,
    ("22023", "empty_body"): EmptyBody,
    ("22023", "invalid_phone"): InvalidPhone,
    ("22023", "template_not_registered"): InvalidValue,
    ("22023", "invalid_display_name"): InvalidValue,
    ("23505", "duplicate"): Conflict,
    ("23514", "too_many_tenants_with_phone"): InvalidValue,
    ("55000", "window_closed"): WindowClosed,
    ("55000", "conversation_blocked"): Blocked,
    ("55000", "tenant_opted_out"): TenantOptedOut,
    ("55000", "landlord_not_opted_in"): NotOptedIn,
    ("55000", "no_active_lease"): NoActiveLease,
    ("55000", "not_configured"): WrongState,
    ("55000", "wrong_state"): WrongState,
    ("55000", "landlord_blocked_phone"): WrongState,
    ("55000", "consent_pending"): ConsentPending,
    ("55000", "consent_declined"): ConsentDeclined,
    ("55000", "daily_limit_reached"): DailyLimitReached,
    ("55000", "too_many_pending_files"): TooManyPendingFiles,
}


def base_class(sqlstate: str | None) -> type[LandlordClientError]:
    """The class of a SQLSTATE (or PGRST code) whatever its keyword; LandlordClientError if unknown."""
    code = sqlstate or ""
    if code in _BASE_BY_SQLSTATE:
        return _BASE_BY_SQLSTATE[code]
    if code.startswith("22"):  # data exceptions: 22P02 malformed uuid, 22001 too long, ...
        return InvalidValue
    return LandlordClientError


def error_class(sqlstate: str | None, keyword: str | None = None) -> type[LandlordClientError]:
    """The class for a SQLSTATE and the detail keyword the database put beside it."""
    if sqlstate and keyword:
        found = _BY_KEYWORD.get((sqlstate, keyword))
        if found is not None:
            return found
    return base_class(sqlstate)


def from_api_error(exc: Any) -> LandlordClientError:
    """A postgrest.APIError (or anything with code/message/hint/details) as a typed error."""
    sqlstate = getattr(exc, "code", None)
    details = getattr(exc, "details", None)
    cls = error_class(sqlstate, details if isinstance(details, str) else None)
    return cls(sqlstate, getattr(exc, "message", None), getattr(exc, "hint", None), details)


def from_storage_error(exc: Any) -> LandlordClientError:
    """A storage3 StorageApiError (Storage's real status is in its body: `status`) as a typed
    error: 400 InvalidValue (a name Storage refuses), 401/403 NotAllowed (RLS: not your folder),
    404 NotFound, 409 Conflict, 413/415 InvalidValue (too large, a type the bucket refuses).
    `sqlstate` and `keyword` are None; `details` is {"status", "error"}: Storage's own status and error code."""
    status = str(getattr(exc, "status", "") or "")
    cls: type[LandlordClientError] = {
        "400": InvalidValue,
        "401": NotAllowed,
        "403": NotAllowed,
        "404": NotFound,
        "409": Conflict,
        "413": InvalidValue,
        "415": InvalidValue,
    }.get(status, LandlordClientError)
    message = f"Storage {status}: {getattr(exc, 'message', None) or exc}"
    return cls(None, message, None, {"status": status, "error": getattr(exc, "code", None)})


__all__ = [
    "Blocked",
    "Conflict",
    "ConsentDeclined",
    "ConsentPending",
    "DailyLimitReached",
    "EmptyBody",
    "InvalidPhone",
    "InvalidValue",
    "LandlordClientError",
    "MessageTooLong",
    "NoActiveLease",
    "NoLandlordProfile",
    "NotAllowed",
    "NotAuthenticated",
    "NotFound",
    "NotOptedIn",
    "TenantOptedOut",
    "WindowClosed",
    "WrongState",
    "base_class",
    "error_class",
    "from_api_error",
    "from_storage_error",
]

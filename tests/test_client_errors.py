"""The landlord client's typed errors: chosen by (SQLSTATE, detail keyword), never by message text.

Unit tests, no database: fake PostgREST errors shaped like postgrest.APIError. The table below is
docs/errors.md's, written out again on purpose so that a change to app/client/errors.py that
drifts from it fails here.
"""

from __future__ import annotations

import pytest

from app.client import (
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
    error_class,
    from_api_error,
)


class FakeAPIError(Exception):
    """What supabase-py raises: postgrest.APIError's attributes, from PostgREST's JSON error."""

    def __init__(self, code: str | None, message: str = "m", details: object = None, hint: str | None = "h"):
        super().__init__(message)
        self.code, self.message, self.details, self.hint = code, message, details, hint


# (SQLSTATE, detail keyword) -> exception, one line per row of the table.
TABLE: list[tuple[str, str, type[LandlordClientError]]] = [
    ("42501", "not_signed_in", NotAllowed),
    ("42501", "no_landlord_profile", NoLandlordProfile),
    ("42501", "support_only", NotAllowed),
    ("42501", "not_allowed", NotAllowed),
    ("42501", "append_only", NotAllowed),
    ("P0002", "not_found", NotFound),
    ("22023", "invalid_value", InvalidValue),
    ("22023", "message_too_long", MessageTooLong),
    ("22023", "empty_body", EmptyBody),
    ("22023", "invalid_phone", InvalidPhone),
    ("23505", "duplicate", Conflict),
    ("55000", "window_closed", WindowClosed),
    ("55000", "conversation_blocked", Blocked),
    ("55000", "tenant_opted_out", TenantOptedOut),
    ("55000", "landlord_not_opted_in", NotOptedIn),
    ("55000", "no_active_lease", NoActiveLease),
    ("55000", "not_configured", WrongState),
    ("55000", "wrong_state", WrongState),
    ("55000", "landlord_blocked_phone", WrongState),
    # Reserved for later issues, mapped now so the client is ready.
    ("55000", "consent_pending", ConsentPending),
    ("55000", "consent_declined", ConsentDeclined),
    ("55000", "daily_limit_reached", DailyLimitReached),
    ("55000", "too_many_pending_files", TooManyPendingFiles),
    ("23514", "too_many_tenants_with_phone", InvalidValue),
    ("22023", "template_not_registered", InvalidValue),
    ("22023", "invalid_display_name", InvalidValue),
]


@pytest.mark.parametrize(("sqlstate", "keyword", "cls"), TABLE, ids=[f"{s}-{k}" for s, k, _ in TABLE])
def test_every_row_of_the_table(sqlstate: str, keyword: str, cls: type[LandlordClientError]) -> None:
    assert error_class(sqlstate, keyword) is cls
    err = from_api_error(FakeAPIError(sqlstate, "some message", keyword, "some hint"))
    assert type(err) is cls
    assert (err.sqlstate, err.message, err.hint, err.details, err.keyword) == (
        sqlstate,
        "some message",
        "some hint",
        keyword,
        keyword,
    )


def test_refined_classes_are_caught_by_their_base() -> None:
    assert issubclass(NoLandlordProfile, NotAllowed)
    assert all(issubclass(c, InvalidValue) for c in (MessageTooLong, EmptyBody, InvalidPhone))
    assert all(
        issubclass(c, WrongState)
        for c in (
            WindowClosed,
            Blocked,
            TenantOptedOut,
            NotOptedIn,
            NoActiveLease,
            ConsentPending,
            ConsentDeclined,
            DailyLimitReached,
            TooManyPendingFiles,
        )
    )
    assert all(issubclass(c, LandlordClientError) for c in (NotFound, Conflict, NotAuthenticated))


@pytest.mark.parametrize(
    ("sqlstate", "cls"),
    [
        ("42501", NotAllowed),
        ("P0002", NotFound),
        ("22023", InvalidValue),
        ("23505", Conflict),
        ("23514", InvalidValue),
        ("55000", WrongState),
    ],
)
@pytest.mark.parametrize(
    "details", [None, "", "some_future_keyword", "Key (id)=(1) already exists.", {"not": "a string"}]
)
def test_missing_or_unknown_keyword_gives_the_sqlstate_base_class(sqlstate: str, cls: type, details: object) -> None:
    err = from_api_error(FakeAPIError(sqlstate, "m", details))
    assert type(err) is cls
    assert err.details == details


def test_message_text_is_never_read() -> None:
    window = "the 24-hour customer service window for this tenant is closed"
    # Another keyword wins whatever the message says.
    assert type(from_api_error(FakeAPIError("55000", window, "conversation_blocked"))) is Blocked
    assert type(from_api_error(FakeAPIError("55000", window, "tenant_opted_out"))) is TenantOptedOut
    # No keyword, or an unknown one: the base class, not WindowClosed.
    assert type(from_api_error(FakeAPIError("55000", window, None))) is WrongState
    assert type(from_api_error(FakeAPIError("55000", window, "something_else"))) is WrongState
    assert error_class("55000", None) is WrongState
    for text in (
        "opted out",
        "this conversation is blocked",
        "WhatsApp is turned off for this landlord",
        "window_closed",
    ):
        assert type(from_api_error(FakeAPIError("55000", text))) is WrongState, text
    # The keyword belongs to its SQLSTATE: window_closed beside 42501 is just NotAllowed.
    assert type(from_api_error(FakeAPIError("42501", window, "window_closed"))) is NotAllowed
    assert type(from_api_error(FakeAPIError("22023", "m", "window_closed"))) is InvalidValue


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("22P02", InvalidValue),  # malformed uuid, from Postgres itself
        ("22001", InvalidValue),
        ("PGRST301", NotAuthenticated),
        ("PGRST302", NotAuthenticated),
        ("PGRST303", NotAuthenticated),
        ("57014", LandlordClientError),  # statement timeout: no typed meaning for a landlord app
        ("23503", LandlordClientError),
        ("PGRST116", LandlordClientError),
        (None, LandlordClientError),
    ],
)
def test_codes_outside_the_table(code: str | None, cls: type) -> None:
    err = from_api_error(FakeAPIError(code, "m", "d"))
    assert type(err) is cls
    assert err.sqlstate == code


def test_error_text_keeps_code_message_and_hint() -> None:
    err = from_api_error(FakeAPIError("55000", "window closed", "window_closed", "send a template"))
    assert str(err) == "55000: window closed (hint: send a template)"
    assert str(InvalidValue(None, "limit must be between 1 and 500")) == "limit must be between 1 and 500"

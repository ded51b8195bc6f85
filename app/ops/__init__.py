"""Support-staff console at /ops: the held-message queue, webhook dead letters and the service status page.

Server-rendered (Jinja, no build step). The user signs in with a Supabase access token, kept in
a Secure, HttpOnly, SameSite=Strict cookie; every form carries a CSRF token. Every read and action
is an RPC executed in the database *as that user* (role authenticated + their JWT claims), so
RLS and the RPCs' checks decide — a landlord's token gets "support staff only" from Postgres.

Everything a person typed (message bodies, names, addresses, dead-letter items) is shown inside
<bdi>, so that right-to-left text or a bidi control (U+202E) reorders only itself, never the
page around it.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from ..auth import InvalidToken, is_support, verify_access_token
from ..db import transaction_as_user

log = logging.getLogger(__name__)
URL_PREFIX = "/ops"
bp = Blueprint("ops", __name__, url_prefix=URL_PREFIX, template_folder="templates")

COOKIE = "zr_ops_token"
HELD_STATUSES = ("ambiguous", "unknown_sender", "landlord_disabled")
DEAD_LETTER_PAGE_SIZE = 50
#: The most of a dead letter's raw body a page shows (bodies can be 3 MB).
DEAD_LETTER_BODY_SHOWN = 4000


def _claims() -> dict[str, Any] | None:
    """The signed-in user's claims, or None. Only a user's token (role authenticated) is a
    session: an anon or service_role token in the cookie is no user to act as."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        claims = verify_access_token(token, current_app.config["ZR"].jwt_secret)
    except InvalidToken:
        return None
    return claims if claims.get("role") == "authenticated" else None


def _csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    token: str = session["csrf"]
    return token


@bp.app_context_processor
def _inject() -> dict[str, Any]:
    return {"csrf_token": _csrf_token}


@bp.before_request
def _guard() -> ResponseReturnValue | None:
    if request.method == "POST":
        sent = request.form.get("csrf", "")
        if not sent or not hmac.compare_digest(sent, session.get("csrf", "")):
            abort(400, description="missing or invalid CSRF token")
    if request.endpoint in ("ops.login", "ops.login_post"):
        return None
    g.claims = _claims()
    if g.claims is None:
        return redirect(url_for("ops.login"))
    return None


def error_page(status: int, title: str, message: str) -> tuple[str, int]:
    """The console's HTML error page (app/http_errors.py calls it for every error under /ops)."""
    return render_template("ops/error.html", status=status, title=title, message=message), status


def _rpc(sql: str, params: dict[str, Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with transaction_as_user(current_app.extensions["zr_pool"], g.claims) as conn:
        return conn.execute(sql, params).fetchall()


def _db_error(exc: psycopg.Error) -> str:
    diag = exc.diag
    text = diag.message_primary or str(exc)
    if diag.message_hint:
        text += f" — {diag.message_hint}"
    return f"{text} ({diag.sqlstate})"


@bp.get("/login")
def login() -> ResponseReturnValue:
    return render_template("ops/login.html")


@bp.post("/login")
def login_post() -> ResponseReturnValue:
    token = (request.form.get("token") or "").strip()
    try:
        claims = verify_access_token(token, current_app.config["ZR"].jwt_secret)
    except InvalidToken:
        flash("That access token is not valid.", "error")
        return render_template("ops/login.html"), 401
    if not is_support(claims):
        flash("This console is for ZenRent support staff.", "error")
        return render_template("ops/login.html"), 403
    resp = redirect(url_for("ops.queue"))
    resp.set_cookie(
        COOKIE,
        token,
        httponly=True,
        secure=current_app.config["ZR"].cookie_secure,
        samesite="Strict",
        path="/ops",
        max_age=8 * 3600,
    )
    session["csrf"] = secrets.token_urlsafe(32)  # a fresh CSRF token per sign-in
    return resp


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    resp = redirect(url_for("ops.login"))
    resp.delete_cookie(COOKIE, path="/ops")
    session.pop("csrf", None)
    return resp


@bp.app_template_filter("age")
def age(value: str | datetime | None) -> str:
    """How long ago an ISO timestamp was, for people ("today", "3 days ago")."""
    if not value:
        return ""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    days = (datetime.now(UTC) - at).days
    return "today" if days < 1 else "1 day ago" if days == 1 else f"{days} days ago"


@bp.app_template_filter("pretty_json")
def pretty_json(value: Any) -> str:
    """A JSON value as indented text, characters as they are (escaping is the template's)."""
    return json.dumps(value, ensure_ascii=False, indent=2)


@bp.app_template_filter("clip")
def clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[:limit] + "…"


@bp.get("/")
def queue() -> ResponseReturnValue:
    status = request.args.get("status") or None
    if status is not None and status not in HELD_STATUSES:
        abort(400, description="unknown status filter")
    after = request.args.get("after") or None
    try:
        rows = _rpc(
            "select * from public.list_held_messages(%(status)s, %(after)s::uuid, 50)",
            {"status": status, "after": after},
        )
    except psycopg.Error as exc:
        flash(_db_error(exc), "error")
        rows = []
    return render_template(
        "ops/queue.html", rows=rows, status=status, statuses=HELD_STATUSES, email=g.claims.get("email")
    )


@bp.post("/messages/<uuid:message_id>/assign")
def assign(message_id: UUID) -> ResponseReturnValue:
    landlord_id = request.form.get("landlord_id", "").strip()
    pin_days = request.form.get("pin_days", "0").strip() or "0"
    reason = request.form.get("reason", "").strip() or None
    try:
        row = _rpc(
            "select public.assign_held_message(%s, %s::uuid, %s::int, %s) as r",
            (str(message_id), landlord_id, pin_days, reason),
        )[0]["r"]
        pinned = f", phone pinned until {row['pinned_until'][:10]}" if row.get("pinned_until") else ""
        flash(f"Message delivered to the landlord{pinned}.", "ok")
    except psycopg.Error as exc:
        flash(_db_error(exc), "error")
    return redirect(url_for("ops.queue", status=request.args.get("status")))


@bp.post("/messages/<uuid:message_id>/dismiss")
def dismiss(message_id: UUID) -> ResponseReturnValue:
    reason = request.form.get("reason", "").strip()
    try:
        _rpc("select public.dismiss_held_message(%s, %s)", (str(message_id), reason))
        flash("Message dismissed.", "ok")
    except psycopg.Error as exc:
        flash(_db_error(exc), "error")
    return redirect(url_for("ops.queue", status=request.args.get("status")))


@bp.get("/dead-letters")
def dead_letters() -> ResponseReturnValue:
    """Webhook bodies and items that could not be used, newest first, a page at a time (keyset on id)."""
    after = request.args.get("after") or None
    if after is not None and not (after.isascii() and after.isdigit()):
        abort(400, description="after must be the id of a dead letter")
    try:
        rows = _rpc(
            "select * from public.list_dead_letters(%(after)s::bigint, %(size)s)",
            {"after": after, "size": DEAD_LETTER_PAGE_SIZE},
        )
    except psycopg.Error as exc:
        flash(_db_error(exc), "error")
        rows = []
    return render_template(
        "ops/dead_letters.html",
        rows=rows,
        page_size=DEAD_LETTER_PAGE_SIZE,
        body_shown=DEAD_LETTER_BODY_SHOWN,
        email=g.claims.get("email"),
    )


@bp.get("/status")
def status() -> ResponseReturnValue:
    try:
        data = _rpc("select public.whatsapp_service_status() as s")[0]["s"]
    except psycopg.Error as exc:
        flash(_db_error(exc), "error")
        data = None
    return render_template("ops/status.html", data=data, email=g.claims.get("email"))

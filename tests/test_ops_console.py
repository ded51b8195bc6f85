"""The support console at /ops and /metrics, against the real local database.

Flask's test client talks to https://localhost, so Secure cookies flow as they do in a browser.
Access tokens are minted here with PyJWT the way Supabase signs them (HS256 with the configured
JWT secret). The module makes its own users, tenants and leases (phones 4474006000xx, e-mails
ops-console-*@test.zenrent), removes them before and after, and checks every change as postgres.
(Audit rows stay: the audit log is append-only for everyone.)
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jwt
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from psycopg.rows import dict_row

import app.metrics
from app import ops as ops_module
from app import webhook as webhook_module
from app.config import default_database_url
from app.ops import COOKIE
from app.service import create_app
from app.webhook import sign

ROOT = Path(__file__).resolve().parent.parent
BASE = "https://localhost"
PHONE = "4474006000"  # + one digit: 1 queue/assign, 2 pin, 3 dismiss, 4 refusals and CSRF, 5 metrics
EMAILS = "ops-console-%@test.zenrent"


@dataclass(frozen=True)
class User:
    id: str
    email: str
    name: str


@dataclass(frozen=True)
class World:
    support: User
    olive: User  # candidate landlord on every phone
    bruno: User  # candidate landlord on every phone
    cecil: User  # a landlord with no lease on these phones


# -- database ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def admin(config):
    """Autocommit superuser connection: what it writes, the app's own connections see."""
    with psycopg.connect(config.database_url, autocommit=True, row_factory=dict_row) as conn:
        yield conn


def _cleanup(admin) -> None:
    like = PHONE + "%"
    admin.execute("delete from public.whatsapp_messages where tenant_phone like %s", [like])
    admin.execute("delete from private.routing_pins where phone like %s", [like])
    admin.execute("delete from private.phone_preferences where phone like %s", [like])
    admin.execute(
        "delete from auth.users where email like %s", [EMAILS]
    )  # profiles, tenants, leases, conversations cascade


def _user(admin, role: str, name: str, *, support: bool = False) -> User:
    user = User(str(uuid.uuid4()), f"ops-console-{role}-{uuid.uuid4().hex[:6]}@test.zenrent", name)
    app_metadata = {"provider": "email", **({"role": "support"} if support else {})}
    admin.execute(
        "insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data) "
        "values (%s, 'authenticated', 'authenticated', %s, %s, '{}')",
        [user.id, user.email, json.dumps(app_metadata)],
    )
    if not support:
        admin.execute(
            "insert into public.user_profiles (id, full_name, email, whatsapp_enabled, whatsapp_opted_in_at) "
            "values (%s, %s, %s, true, now())",
            [user.id, name, user.email],
        )
    return user


@pytest.fixture(scope="module")
def world(admin) -> World:
    _cleanup(admin)
    w = World(
        support=_user(admin, "support", "Sam Console", support=True),
        olive=_user(admin, "olive", "Olive Opsworth"),
        bruno=_user(admin, "bruno", "Bruno Backoffice"),
        cecil=_user(admin, "cecil", "Cecil Outsider"),
    )
    for landlord, address, tenant in (
        (w.olive, "10 Console Court", "Tara Twofold"),
        (w.bruno, "20 Console Court", "Tara T. (parking)"),
        (w.cecil, "30 Elsewhere Lane", None),
    ):
        prop = admin.execute(
            "insert into public.properties (user_id, address) values (%s, %s) returning id", [landlord.id, address]
        ).fetchone()["id"]
        if tenant is None:
            continue
        for digit in "12345":
            t = admin.execute(
                "insert into public.tenants (user_id, name, phone) values (%s, %s, %s) returning id",
                [landlord.id, tenant, f"+{PHONE}{digit}"],
            ).fetchone()["id"]
            admin.execute(
                "insert into public.leases (tenant_id, property_id, status, start_date) "
                "values (%s, %s, 'active', '2025-01-01')",
                [t, prop],
            )
            # Tara confirmed both landlords (taps on their consent requests): her messages stay
            # ambiguous, and support assigns to either without a reason.
            admin.execute(
                "insert into public.whatsapp_tenant_links (landlord_id, tenant_phone, state, state_via, "
                "state_changed_at) values (%s, %s, 'confirmed', 'consent_yes', now())",
                [landlord.id, f"{PHONE}{digit}"],
            )
    yield w
    _cleanup(admin)


def route(admin, phone: str, body: str, contact_name: str | None = None) -> dict[str, Any]:
    """A tenant's message, routed as the webhook would (service role)."""
    contact = {"profile": {"name": contact_name}, "wa_id": phone} if contact_name else None
    message = {
        "from": phone,
        "id": f"wamid.OPS.{uuid.uuid4().hex}",
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": body},
    }
    with admin.transaction():
        admin.execute("set local role service_role")
        return admin.execute(
            "select public.route_inbound_message(%s::jsonb, %s::jsonb) as r",
            [json.dumps(message), json.dumps(contact) if contact else None],
        ).fetchone()["r"]


def held(admin, digit: str, body: str, contact_name: str | None = None) -> str:
    r = route(admin, PHONE + digit, body, contact_name)
    assert r["routing_status"] == "ambiguous", r
    return r["message_id"]


def message(admin, message_id: str) -> dict[str, Any]:
    return admin.execute(
        "select m.routing_status, m.landlord_id::text, m.conversation_id, d.routing_metadata "
        "from public.whatsapp_messages m left join private.whatsapp_message_details d "
        "on d.message_id = m.id where m.id = %s",
        [message_id],
    ).fetchone()


def audit(admin, message_id: str) -> list[dict[str, Any]]:
    return admin.execute(
        "select actor_id::text, action, landlord_id::text, pin_days, reason "
        "from private.support_audit_log where message_id = %s order by id",
        [message_id],
    ).fetchall()


def service_status(admin) -> dict[str, Any]:
    with admin.transaction():
        admin.execute("set local role service_role")
        return admin.execute("select public.whatsapp_service_status() as s").fetchone()["s"]


# -- tokens and the console --------------------------------------------------------------------------
def token(
    config, user: User, *, support: bool = True, expires_in: int = 3600, secret: str | None = None, **overrides: Any
) -> str:
    claims = {
        "sub": user.id,
        "role": "authenticated",
        "aud": "authenticated",
        "email": user.email,
        "exp": int(time.time()) + expires_in,
        "app_metadata": {"provider": "email", **({"role": "support"} if support else {})},
    }
    claims.update(overrides)
    return jwt.encode(claims, secret or config.jwt_secret, algorithm="HS256")


class Console:
    """The test client, always over https://localhost."""

    def __init__(self, client):
        self.client = client

    def get(self, path: str, **kw):
        return self.client.get(path, base_url=BASE, **kw)

    def post(self, path: str, **kw):
        return self.client.post(path, base_url=BASE, **kw)

    def csrf(self, path: str = "/ops/") -> str:
        page = self.get(path)
        assert page.status_code == 200, page.status_code
        return re.search(r'name="csrf" value="([^"]+)"', page.get_data(as_text=True)).group(1)

    def sign_in(self, access_token: str):
        return self.post("/ops/login", data={"csrf": self.csrf("/ops/login"), "token": access_token})

    def page(self, path: str = "/ops/") -> str:
        resp = self.get(path)
        assert resp.status_code == 200, resp.status_code
        return html.unescape(resp.get_data(as_text=True))

    def submit(self, path: str, **data: str) -> str:
        """POST a console form with this session's CSRF token; follow the redirect; the page's text."""
        resp = self.post(path, data={"csrf": self.csrf(), **data}, follow_redirects=True)
        assert resp.status_code == 200, resp.status_code
        return html.unescape(resp.get_data(as_text=True))


BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


class _BidiOutsideBdi(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.outside: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.depth += tag == "bdi"

    def handle_endtag(self, tag: str) -> None:
        self.depth -= tag == "bdi"

    def handle_data(self, data: str) -> None:
        if self.depth == 0 and any(c in data for c in BIDI_CONTROLS):
            self.outside.append(data)


def bidi_outside_bdi(page: str) -> list[str]:
    """Text with a bidi control that is not isolated in a <bdi> (it would reorder the page around it)."""
    parser = _BidiOutsideBdi()
    parser.feed(page)
    return parser.outside


def set_cookies(resp) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in resp.headers.getlist("Set-Cookie")}


@pytest.fixture()
def console(app) -> Console:
    return Console(app.test_client())


@pytest.fixture()
def support(console, config, world) -> Console:
    resp = console.sign_in(token(config, world.support))
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return console


# -- signing in ------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/ops/", "/ops/status", "/ops/?status=ambiguous", "/ops/dead-letters"])
def test_unauthenticated_is_sent_to_sign_in(console, path):
    resp = console.get(path)
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith("/ops/login")


@pytest.mark.parametrize("case", ["forged", "expired", "garbage", "alg-none", "no-exp"])
def test_forged_or_expired_token_is_401_and_sets_no_cookie(console, config, world, case):
    if case == "forged":
        bad = token(config, world.support, secret="not-the-project-secret-but-at-least-32-chars")
    elif case == "expired":
        bad = token(config, world.support, expires_in=-60)
    elif case == "garbage":
        bad = "not.a.token"
    elif case == "alg-none":
        bad = jwt.encode(
            {
                "sub": world.support.id,
                "role": "authenticated",
                "exp": int(time.time()) + 3600,
                "app_metadata": {"role": "support"},
            },
            None,
            algorithm="none",
        )
    else:
        bad = jwt.encode(
            {"sub": world.support.id, "role": "authenticated", "app_metadata": {"role": "support"}},
            config.jwt_secret,
            algorithm="HS256",
        )
    resp = console.sign_in(bad)
    assert resp.status_code == 401
    assert "not valid" in resp.get_data(as_text=True)
    assert COOKIE not in set_cookies(resp)
    assert console.get("/ops/").status_code == 302


def test_a_landlord_token_is_403(console, config, world):
    resp = console.sign_in(token(config, world.olive, support=False))
    assert resp.status_code == 403
    assert "for ZenRent support staff" in resp.get_data(as_text=True)
    assert COOKIE not in set_cookies(resp)
    # user_metadata is the user's own to edit: "support" there counts for nothing
    resp = console.sign_in(token(config, world.olive, support=False, user_metadata={"role": "support"}))
    assert resp.status_code == 403


def test_a_landlord_token_put_in_the_cookie_is_refused_by_the_database(console, admin, config, world):
    body = "Console test: a landlord must never read this"
    held(admin, "4", body)
    console.client.set_cookie(COOKIE, token(config, world.olive, support=False), domain="localhost", path="/ops")
    page = console.page("/ops/")
    assert "support staff only" in page and "(42501)" in page  # Postgres said no, not the Flask code
    assert body not in page
    assert "support staff only" in console.page("/ops/status")
    assert "support staff only" in console.page("/ops/dead-letters")


@pytest.mark.parametrize("role", ["service_role", "anon"])
def test_a_token_that_is_not_a_user_is_no_session(console, config, role):
    claims = {"role": role, "iss": "supabase", "exp": int(time.time()) + 3600}
    console.client.set_cookie(
        COOKIE, jwt.encode(claims, config.jwt_secret, algorithm="HS256"), domain="localhost", path="/ops"
    )
    resp = console.get("/ops/")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/ops/login")


def test_support_sign_in_sets_a_locked_down_cookie(console, config, world):
    resp = console.sign_in(token(config, world.support))
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/ops/")
    cookie = set_cookies(resp)[COOKIE]
    attributes = {a.strip().split("=")[0].lower(): a.strip() for a in cookie.split(";")[1:]}
    assert "httponly" in attributes and "secure" in attributes
    assert attributes["samesite"] == "SameSite=Strict"
    assert attributes["path"] == "Path=/ops"
    session = set_cookies(resp)["session"]
    assert "Secure" in session and "HttpOnly" in session and "SameSite=Strict" in session
    page = console.page("/ops/")
    assert world.support.email in page and "Held messages" in page


def test_sign_out_needs_csrf_and_then_forgets_the_token(support):
    assert support.post("/ops/logout").status_code == 400
    assert support.get("/ops/").status_code == 200
    resp = support.post("/ops/logout", data={"csrf": support.csrf()})
    assert resp.status_code == 302
    assert COOKIE in set_cookies(resp) and "Max-Age=0" in set_cookies(resp)[COOKIE]
    assert support.get("/ops/").status_code == 302


# -- CSRF ----------------------------------------------------------------------------------------
def test_posts_without_or_with_a_wrong_csrf_token_are_400_and_change_nothing(support, app, admin, config, world):
    message_id = held(admin, "4", "Console test: CSRF")
    other = Console(app.test_client())
    other.sign_in(token(config, world.support))
    foreign = other.csrf()  # valid, but another session's
    for data in ({}, {"csrf": ""}, {"csrf": "forged"}, {"csrf": foreign}):
        assign = support.post(f"/ops/messages/{message_id}/assign", data={**data, "landlord_id": world.olive.id})
        dismiss = support.post(f"/ops/messages/{message_id}/dismiss", data={**data, "reason": "spam"})
        assert (assign.status_code, dismiss.status_code) == (400, 400), data
    assert message(admin, message_id)["routing_status"] == "ambiguous"
    assert audit(admin, message_id) == []
    assert support.post("/ops/login", data={"token": token(config, world.support)}).status_code == 400


# -- the queue and its actions --------------------------------------------------------------------
def test_the_queue_lists_a_held_message_with_its_candidates(support, admin, world):
    message_id = held(admin, "1", "Console test: who fixes the boiler?")
    page = support.page("/ops/")
    section = re.search(rf'<section class="msg" data-message-id="{message_id}".*?</section>', page, re.S).group(0)
    assert "Console test: who fixes the boiler?" in section and f"+{PHONE}1" in section and "ambiguous" in section
    for text in (
        "Olive Opsworth",
        "10 Console Court",
        "Tara Twofold",
        "Bruno Backoffice",
        "20 Console Court",
        "Tara T. (parking)",
        f'value="{world.olive.id}"',
        f'value="{world.bruno.id}"',
    ):
        assert text in section, text
    assert "Cecil Outsider" not in section
    assert f'data-message-id="{message_id}"' in support.page("/ops/?status=ambiguous")
    assert f'data-message-id="{message_id}"' not in support.page("/ops/?status=unknown_sender")
    assert support.get("/ops/?status=delivered").status_code == 400


def test_assign_via_the_form(support, admin, world):
    message_id = held(admin, "1", "Console test: assign me")
    page = support.submit(f"/ops/messages/{message_id}/assign", landlord_id=world.olive.id, pin_days="0")
    assert "Message delivered to the landlord." in page and "pinned" not in page
    assert f'data-message-id="{message_id}"' not in page
    row = message(admin, message_id)
    assert (row["routing_status"], row["landlord_id"]) == ("delivered", world.olive.id) and row["conversation_id"]
    assert row["routing_metadata"]["assigned_by"] == world.support.id
    assert (
        admin.execute("select count(*) as n from private.routing_pins where phone = %s", [PHONE + "1"]).fetchone()["n"]
        == 0
    )
    assert audit(admin, message_id) == [
        {"actor_id": world.support.id, "action": "assign", "landlord_id": world.olive.id, "pin_days": 0, "reason": None}
    ]


def test_assign_and_pin_via_the_form_routes_the_next_message(support, admin, world):
    message_id = held(admin, "2", "Console test: pin me")
    page = support.submit(f"/ops/messages/{message_id}/assign", landlord_id=world.bruno.id, pin_days="30")
    assert "Message delivered to the landlord, phone pinned until 20" in page
    assert message(admin, message_id)["landlord_id"] == world.bruno.id
    pin = admin.execute(
        "select landlord_id::text, expires_at - now() as left, created_by::text "
        "from private.routing_pins where phone = %s",
        [PHONE + "2"],
    ).fetchone()
    assert pin["landlord_id"] == world.bruno.id and pin["created_by"] == world.support.id
    assert 29.9 < pin["left"].total_seconds() / 86400 <= 30
    assert [a["action"] for a in audit(admin, message_id)] == ["assign_and_pin"]
    nxt = route(admin, PHONE + "2", "Console test: after the pin")
    assert (nxt["routing_status"], nxt["landlord_id"]) == ("delivered", world.bruno.id)
    assert message(admin, nxt["message_id"])["routing_metadata"]["rule"] == "support_pin"


def test_dismiss_via_the_form(support, admin, world):
    message_id = held(admin, "3", "Console test: cheap watches")
    page = support.submit(f"/ops/messages/{message_id}/dismiss", reason="")
    assert "a reason is required to dismiss a message" in page and "(22023)" in page
    assert message(admin, message_id)["routing_status"] == "ambiguous"
    page = support.submit(f"/ops/messages/{message_id}/dismiss", reason="spam")
    assert "Message dismissed." in page and f'data-message-id="{message_id}"' not in page
    row = message(admin, message_id)
    assert (row["routing_status"], row["landlord_id"], row["routing_metadata"]["reason"]) == ("dismissed", None, "spam")
    assert audit(admin, message_id) == [
        {"actor_id": world.support.id, "action": "dismiss", "landlord_id": None, "pin_days": None, "reason": "spam"}
    ]


def test_a_refusal_by_the_database_is_a_flash_not_a_500(support, admin, world):
    message_id = held(admin, "4", "Console test: refusals")
    page = support.submit(f"/ops/messages/{message_id}/assign", landlord_id=world.cecil.id)
    assert "a reason is required: not a routing candidate" in page and "(22023)" in page
    page = support.submit(
        f"/ops/messages/{message_id}/assign", landlord_id=world.cecil.id, reason="Moved", pin_days="30"
    )
    assert "cannot pin" in page and "(22023)" in page
    page = support.submit(f"/ops/messages/{message_id}/assign", landlord_id="not-a-uuid")
    assert "(22P02)" in page
    page = support.submit(f"/ops/messages/{message_id}/assign", landlord_id=world.olive.id, pin_days="many")
    assert "(22P02)" in page
    assert message(admin, message_id)["routing_status"] == "ambiguous" and audit(admin, message_id) == []
    page = support.submit(f"/ops/messages/{message_id}/assign", landlord_id=world.cecil.id, reason="Tenant says Cecil")
    assert "Message delivered to the landlord." in page
    assert message(admin, message_id)["landlord_id"] == world.cecil.id
    page = support.submit(f"/ops/messages/{message_id}/dismiss", reason="too late")
    assert "held message not found" in page and "(P0002)" in page


def test_the_status_page_shows_the_counts(support, admin):
    held(admin, "4", "Console test: status page")
    status = service_status(admin)
    page = support.page("/ops/status")
    assert f'<td id="held">{status["held"]}</td>' in page and status["held"] >= 1
    assert re.search(rf"<th>Outbound queued</th><td>{status['outbound_queued']}</td>", page)
    assert re.search(rf"<th>Needing review</th><td>{status['outbound_needs_review']}</td>", page)
    assert re.search(rf"<th>ambiguous</th><td>{status['inbound_last_24h']['ambiguous']}</td>", page)
    assert re.search(rf"<th>Active routing pins</th><td>{status['active_pins']}</td>", page)
    dead = status.get("dead_letters_last_24h", 0)  # the key arrives with the SQL half of issue 15
    assert f'<td id="dead-letters"><a href="/ops/dead-letters">{dead}</a></td>' in page


def test_user_typed_text_in_the_queue_is_isolated_in_bdi(support, admin):
    """A body or a WhatsApp name with U+202E (right-to-left override) must not reorder the page."""
    message_id = held(admin, "4", "Console test: invoice \u202egpj.exe", contact_name="Tara \u202eevil")
    raw = support.get("/ops/").get_data(as_text=True)
    section = re.search(rf'<section class="msg" data-message-id="{message_id}".*?</section>', raw, re.S).group(0)
    assert '<bdi class="text">Console test: invoice \u202egpj.exe</bdi>' in section
    assert "(<bdi>Tara \u202eevil</bdi>)" in section
    assert bidi_outside_bdi(raw) == []


# -- dead letters -----------------------------------------------------------------------------------
ITEM = {"from": None, "id": "wamid.DEAD", "type": "text", "text": {"body": "pay to \u202e0987 account"}}


def dead_letter_body(admin, body: str, error: str) -> int:
    """A body the shim could not use, kept as the shim keeps it (service role)."""
    with admin.transaction():
        admin.execute("set local role service_role")
        return admin.execute("select public.dead_letter_webhook(%s, %s) as id", [body, error]).fetchone()["id"]


def dead_letter_item(admin, item: dict[str, Any]) -> int:
    """An item ingest_whatsapp_webhook could not use (as the SQL half of issue 15 keeps them)."""
    return admin.execute(
        "insert into private.webhook_dead_letters (source, phone_number_id, error_code, error_message, item) "
        "values ('message', '100000000000001', '22023', 'message has no sender (from)', %s) returning id",
        [json.dumps(item)],
    ).fetchone()["id"]


def test_dead_letters_show_code_message_and_item_isolated_in_bdi(support, admin):
    body_id = dead_letter_body(admin, '{"object": "\u202ewhatsapp', "invalid_json: the body is not JSON")
    item_id = dead_letter_item(admin, ITEM)
    raw = support.get("/ops/dead-letters").get_data(as_text=True)
    assert '<a href="/ops/dead-letters">Dead letters</a>' in support.get("/ops/").get_data(as_text=True)  # nav
    sections = dict(
        re.findall(r'<section class="msg dead-letter" data-dead-letter-id="(\d+)">(.*?)</section>', raw, re.S)
    )
    assert list(sections)[:2] == [str(item_id), str(body_id)]  # newest first
    item = html.unescape(sections[str(item_id)])
    assert '<code class="error-code">22023</code>' in item
    assert '<bdi class="error-message">message has no sender (from)</bdi>' in item
    shown = re.search(r'<pre class="item"><bdi>(.*?)</bdi></pre>', item, re.S).group(1)
    assert json.loads(shown) == ITEM and "\n  " in shown  # indented, the characters as they are
    body = html.unescape(sections[str(body_id)])
    assert '<bdi class="error-message">invalid_json: the body is not JSON</bdi>' in body
    assert '<pre class="body"><bdi>{"object": "\u202ewhatsapp</bdi></pre>' in body
    assert bidi_outside_bdi(raw) == []


def test_dead_letters_page_by_keyset(support, admin, monkeypatch):
    older = dead_letter_body(admin, "not json 1", "invalid_json: first")
    newer = dead_letter_body(admin, "not json 2", "invalid_json: second")
    monkeypatch.setattr(ops_module, "DEAD_LETTER_PAGE_SIZE", 1)
    first = support.get("/ops/dead-letters").get_data(as_text=True)
    assert re.findall(r'data-dead-letter-id="(\d+)"', first) == [str(newer)]
    older_link = html.unescape(re.search(r'<a href="([^"]+)">Older →</a>', first).group(1))
    assert older_link == f"/ops/dead-letters?after={newer}"
    second = support.get(older_link).get_data(as_text=True)
    assert re.findall(r'data-dead-letter-id="(\d+)"', second) == [str(older)]
    assert support.get("/ops/dead-letters?after=12a").status_code == 400
    assert support.get("/ops/dead-letters?after=-1").status_code == 400


# -- /metrics ----------------------------------------------------------------------------------
DOCUMENTED = re.findall(r"^\s+(zenrent_\w+)", app.metrics.__doc__, re.M)


def bearer(app) -> dict[str, str]:
    return {"Authorization": f"Bearer {app.config['ZR'].metrics_token}"}


def scrape(client) -> dict[tuple[str, tuple], float]:
    resp = client.get("/metrics", headers=bearer(client.application))
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(resp.get_data(as_text=True))
        for s in family.samples
    }


def test_metrics_expose_every_documented_metric_and_count_webhooks(client, admin, config, world, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert len(DOCUMENTED) >= 12 and "zenrent_database_up" in DOCUMENTED
    text = client.get("/metrics", headers=bearer(client.application)).get_data(as_text=True)
    for name in DOCUMENTED:
        assert re.search(rf"^# TYPE {name} ", text, re.M), name

    admin.execute(
        "select public.configure_whatsapp(jsonb_build_object('phone_number_id', %s::text))", [config.phone_number_id]
    )
    before = scrape(client)
    wamid = f"wamid.OPS.{uuid.uuid4().hex}"
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550000001",
                                "phone_number_id": config.phone_number_id,
                            },
                            "messages": [
                                {
                                    "from": PHONE + "5",
                                    "id": wamid,
                                    "timestamp": str(int(time.time())),
                                    "type": "text",
                                    "text": {"body": "Console test: metrics"},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    assert (
        client.post(
            "/webhooks/whatsapp", data=body, headers={**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64}
        ).status_code
        == 401
    )
    ok = client.post(
        "/webhooks/whatsapp", data=body, headers={**headers, "X-Hub-Signature-256": sign(body, config.app_secret)}
    )
    assert ok.status_code == 200 and ok.get_json()["messages"][0]["routing_status"] == "ambiguous"
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("zenrent_webhook_requests_total", status="401") == 1
    assert delta("zenrent_webhook_requests_total", status="200") == 1
    assert delta("zenrent_webhook_request_seconds_count") == 2
    assert delta("zenrent_messages_routed_total", routing_status="ambiguous") == 1
    status = service_status(admin)
    assert after[("zenrent_database_up", ())] == 1
    assert after[("zenrent_held_messages", ())] == status["held"]
    assert after[("zenrent_outbound_queue_depth", (("state", "queued"),))] == status["outbound_queued"]
    assert after[("zenrent_db_pool_connections", (("state", "size"),))] >= 1


def test_metrics_say_when_the_database_is_down(config):
    down = create_app(
        replace(
            config,
            database_url=default_database_url({"ZR_DB_PORT": "1"}),  # nothing on port 1
            db_pool_timeout_s=0.5,
        )
    )
    try:
        samples = scrape(down.test_client())
        assert samples[("zenrent_database_up", ())] == 0
        assert ("zenrent_held_messages", ()) not in samples
    finally:
        down.extensions["zr_pool"].close(timeout=0)


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic bG9jYWw6bWV0cmljcw==", "Bearer wrong-token", "Bearer {token}x", "{token}"],
    ids=["none", "empty", "scheme-only", "blank-token", "basic", "wrong", "longer", "no-scheme"],
)
def test_metrics_need_the_bearer_token(client, config, authorization):
    headers = {} if authorization is None else {"Authorization": authorization.format(token=config.metrics_token)}
    resp = client.get("/metrics", headers=headers)
    assert resp.status_code == 401 and resp.is_json
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    error = resp.get_json()["error"]
    assert error["code"] in ("missing_token", "invalid_token") and error["message"] and error["hint"]
    assert "zenrent_" not in resp.get_data(as_text=True)


def test_metrics_with_the_bearer_token_are_200(client, config):
    for scheme in ("Bearer", "bearer"):
        resp = client.get("/metrics", headers={"Authorization": f"{scheme} {config.metrics_token}"})
        assert resp.status_code == 200 and "zenrent_database_up" in resp.get_data(as_text=True)


def test_dead_letters_are_counted_in_metrics(client, config, admin, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    before = scrape(client)
    headers = {"Content-Type": "application/json"}
    deep = b"[" * 1000
    resp = client.post(
        "/webhooks/whatsapp", data=deep, headers={**headers, "X-Hub-Signature-256": sign(deep, config.app_secret)}
    )
    assert resp.get_json() == {"dead_lettered": True}
    # ingest_whatsapp_webhook reports the items it kept as `dead_letters` (the SQL half of issue 15).
    monkeypatch.setattr(
        webhook_module, "ingest", lambda _config, _text: {"messages": [], "statuses": [], "dead_letters": 3}
    )
    body = b'{"object": "whatsapp_business_account", "entry": []}'
    resp = client.post(
        "/webhooks/whatsapp", data=body, headers={**headers, "X-Hub-Signature-256": sign(body, config.app_secret)}
    )
    assert resp.status_code == 200 and resp.get_json()["dead_letters"] == 3
    after = scrape(client)
    key = ("zenrent_webhook_dead_letters_total", ())
    assert after[key] - before.get(key, 0.0) == 4
    # The gauge comes from whatsapp_service_status(); 0 while the key is missing.
    assert after[("zenrent_webhook_dead_letters_24h", ())] == service_status(admin).get("dead_letters_last_24h", 0)


def test_media_backlog_and_failures_are_in_metrics_and_on_the_status_page(
    client, support, config, admin, world, monkeypatch
):
    """A media worker that stopped shows as a growing backlog; a file lost for good is counted by code."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    wamid = f"wamid.OPS.{uuid.uuid4().hex}"
    message = {
        "from": PHONE + "5",
        "id": wamid,
        "timestamp": str(int(time.time())),
        "type": "image",
        "image": {"id": "media." + wamid, "mime_type": "image/jpeg", "sha256": "c2hh"},
    }
    with admin.transaction():
        admin.execute("set local role service_role")
        admin.execute("select public.route_inbound_message(%s::jsonb)", [json.dumps(message)])
    before = scrape(client)
    status = service_status(admin)
    assert status["media_pending"] >= 1
    assert before[("zenrent_media_jobs_pending", ())] == status["media_pending"]
    assert before[("zenrent_media_oldest_pending_seconds", ())] >= 0
    with admin.transaction():
        job = admin.execute(
            "select j.id from private.media_jobs j join public.whatsapp_messages m on m.id = j.message_id "
            "where m.wamid = %s",
            [wamid],
        ).fetchone()["id"]
        admin.execute("set local role service_role")
        admin.execute("select public.fail_media_job(%s, 'gone', false)", [job])
    after = scrape(client)
    key = ("zenrent_media_failed_24h", (("code", "gone"), ("kind", "download")))
    assert after[key] - before.get(key, 0.0) == 1
    assert after[("zenrent_media_jobs_pending", ())] == before[("zenrent_media_jobs_pending", ())] - 1
    status, page = service_status(admin), support.page("/ops/status")
    assert f'<td id="media-pending">{status["media_pending"]}</td>' in page
    failed = re.search(r'<table id="media-failed">(.*?)</table>', page, re.S)
    assert failed and f"<th>download:gone</th><td>{status['media_failed_last_24h']['download:gone']}</td>" in failed[1]


def test_concurrent_scrapes_all_succeed(app):
    from concurrent.futures import ThreadPoolExecutor

    def one(_: int) -> int:
        return app.test_client().get("/metrics", headers=bearer(app)).status_code

    with ThreadPoolExecutor(6) as pool:
        assert set(pool.map(one, range(24))) == {200}


WORKER = """
import sys
from app.service import create_app
from app.config import Config
app = create_app(Config.from_env())
client = app.test_client()
if sys.argv[1] == "post":
    client.post("/webhooks/whatsapp", data=b"{}", headers={"Content-Type": "application/json"})  # unsigned: 401
else:
    token = app.config["ZR"].metrics_token
    sys.stdout.write(client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).get_data(as_text=True))
app.extensions["zr_pool"].close(timeout=0)
"""


def test_metrics_add_up_across_worker_processes(config, tmp_path):
    """gunicorn's workers are processes: with PROMETHEUS_MULTIPROC_DIR every one's samples count."""
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "DATABASE_URL": config.database_url,
        "PYTHONPATH": str(ROOT),
    }

    def run(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-c", WORKER, *args],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout

    run("post")
    run("post")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(run("scrape"))
        for s in f.samples
    }
    assert samples[("zenrent_webhook_requests_total", (("status", "401"),))] == 2
    assert samples[("zenrent_webhook_request_seconds_count", ())] == 2
    assert samples[("zenrent_database_up", ())] == 1


def test_support_tells_look_alike_candidates_apart_and_gives_a_reason_for_an_unconfirmed_one(support, admin, world):
    """A landlord copied Olive's display name and typed her tenant's phone in: the queue shows
    both with their email and id, the link state, and that the names are the same; assigning to
    either (neither is confirmed) needs a reason, which the form asks for."""
    copycat = _user(admin, "copycat", world.olive.name)
    for landlord, address in ((world.olive, "10 Console Court"), (copycat, "10 Console Court")):
        prop = admin.execute(
            "insert into public.properties (user_id, address) values (%s, %s) returning id", [landlord.id, address]
        ).fetchone()["id"]
        t = admin.execute(
            "insert into public.tenants (user_id, name, phone) values (%s, 'Una Known', %s) returning id",
            [landlord.id, f"+{PHONE}6"],
        ).fetchone()["id"]
        admin.execute(
            "insert into public.leases (tenant_id, property_id, status, start_date) "
            "values (%s, %s, 'active', '2025-01-01')",
            [t, prop],
        )
    message_id = held(admin, "6", "Console test: which Olive?")
    page = support.page()
    card = page[page.index(f'data-message-id="{message_id}"') :].split("</section>")[0]
    assert card.count("same name as another candidate") == 2
    assert world.olive.email in card and copycat.email in card and copycat.id in card and world.olive.id in card
    assert card.count('class="badge link-unconfirmed"') == 2 and card.count('name="reason" required') >= 2
    page = support.submit(f"/ops/messages/{message_id}/assign", landlord_id=world.olive.id)
    assert "a reason is required" in page and "the tenant has not confirmed this landlord" in page and "(22023)" in page
    assert message(admin, message_id)["routing_status"] == "ambiguous"
    page = support.submit(
        f"/ops/messages/{message_id}/assign", landlord_id=world.olive.id, reason="Una confirmed by phone"
    )
    assert "Message delivered to the landlord." in page
    assert message(admin, message_id)["landlord_id"] == world.olive.id
    [entry] = admin.execute(
        "select reason, details from private.support_audit_log where message_id = %s", [message_id]
    ).fetchall()
    assert entry["reason"] == "Una confirmed by phone" and entry["details"]["link_state"] == "unconfirmed"

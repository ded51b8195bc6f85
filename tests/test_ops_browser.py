"""The support console in a real browser: headless Chromium from Debian, driven by Playwright.

The story: a tenant who rents from two landlords writes to the central number (a signed webhook)
and the message is held as ambiguous; support signs in with an access token, sees it with both
candidate landlords, clicks "Assign & pin", sees it leave the queue; the tenant's next message
routes straight to the pinned landlord.

The browser is the system Chromium (`apt install chromium`, scripts/setup); nothing is ever
downloaded (`playwright install` is never run). The app is served on 127.0.0.1 on a free port
from this process, with Secure cookies on: Chromium treats http://127.0.0.1 as a secure context
and keeps them. The queue screenshot is written to docs/ops-queue.png when it is missing or when
ZR_UPDATE_SCREENSHOTS=1 (otherwise to the test's tmp dir, so that test runs leave docs/ alone).
Phones 4474007000xx and e-mails ops-browser-*@test.zenrent are this module's own.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import psycopg
import pytest
import requests
from playwright.sync_api import sync_playwright
from psycopg.rows import dict_row
from werkzeug.serving import make_server

from app.service import create_app
from app.webhook import sign

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "docs" / "ops-queue.png"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = "447400700001"
EMAILS = "ops-browser-%@test.zenrent"


def _cleanup(admin) -> None:
    admin.execute("delete from public.whatsapp_messages where tenant_phone like '4474007000%%'")
    admin.execute("delete from private.routing_pins where phone like '4474007000%%'")
    admin.execute("delete from private.phone_preferences where phone like '4474007000%%'")
    admin.execute("delete from auth.users where email like %s", [EMAILS])


@pytest.fixture(scope="module")
def admin(config):
    with psycopg.connect(config.database_url, autocommit=True, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture(scope="module")
def people(admin, config) -> Iterator[dict[str, dict[str, str]]]:
    """Support staff, and two landlords who both let to the same tenant phone."""
    _cleanup(admin)
    admin.execute(
        "select public.configure_whatsapp(jsonb_build_object('phone_number_id', %s::text))", [config.phone_number_id]
    )
    out: dict[str, dict[str, str]] = {}
    for key, name, support in (
        ("support", "Sam Support", True),
        ("greta", "Greta Gable", False),
        ("hugo", "Hugo Hearth", False),
    ):
        uid, email = str(uuid.uuid4()), f"ops-browser-{key}@test.zenrent"  # removed first by _cleanup
        app_metadata = {"provider": "email", **({"role": "support"} if support else {})}
        admin.execute(
            "insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data) "
            "values (%s, 'authenticated', 'authenticated', %s, %s, '{}')",
            [uid, email, json.dumps(app_metadata)],
        )
        out[key] = {"id": uid, "email": email, "name": name}
    for key, address in (("greta", "Flat 3, 7 Willow Road"), ("hugo", "Garage 12, Mill Lane")):
        landlord = out[key]["id"]
        admin.execute(
            "insert into public.user_profiles (id, full_name, email, whatsapp_enabled, whatsapp_opted_in_at) "
            "values (%s, %s, %s, true, now())",
            [landlord, out[key]["name"], out[key]["email"]],
        )
        prop = admin.execute(
            "insert into public.properties (user_id, address) values (%s, %s) returning id", [landlord, address]
        ).fetchone()["id"]
        tenant = admin.execute(
            "insert into public.tenants (user_id, name, phone) values (%s, 'Maya Lund', %s) returning id",
            [landlord, "+" + PHONE],
        ).fetchone()["id"]
        admin.execute(
            "insert into public.leases (tenant_id, property_id, status, start_date) "
            "values (%s, %s, 'active', '2025-01-01')",
            [tenant, prop],
        )
    yield out
    _cleanup(admin)


@pytest.fixture(scope="module")
def server(config) -> Iterator[str]:
    """The app on 127.0.0.1, a free port, in a thread of this process."""
    app = create_app(config)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(timeout=5)
    app.extensions["zr_pool"].close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup installs Debian's chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def webhook(base: str, config, body_text: str) -> dict[str, Any]:
    """A tenant's text message, delivered as Meta does: a signed POST to the same app."""
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
                            "contacts": [{"profile": {"name": "Maya"}, "wa_id": PHONE}],
                            "messages": [
                                {
                                    "from": PHONE,
                                    "id": f"wamid.OPSB.{uuid.uuid4().hex}",
                                    "timestamp": str(int(time.time())),
                                    "type": "text",
                                    "text": {"body": body_text},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    body = json.dumps(payload).encode()
    resp = requests.post(
        f"{base}/webhooks/whatsapp",
        data=body,
        timeout=10,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, config.app_secret)},
    )
    assert resp.status_code == 200, resp.text
    return resp.json()["messages"][0]


def support_token(config, user: dict[str, str]) -> str:
    return jwt.encode(
        {
            "sub": user["id"],
            "role": "authenticated",
            "aud": "authenticated",
            "email": user["email"],
            "exp": int(time.time()) + 3600,
            "app_metadata": {"provider": "email", "role": "support"},
        },
        config.jwt_secret,
        algorithm="HS256",
    )


def test_support_assigns_and_pins_in_the_browser(browser, server, people, admin, config, tmp_path):
    held = webhook(server, config, "Hi, the heating in my flat is off again since this morning.")
    assert held["routing_status"] == "ambiguous"

    context = browser.new_context(viewport={"width": 1100, "height": 440})
    page = context.new_page()
    page.set_default_timeout(10_000)

    # Sign in with an access token.
    page.goto(f"{server}/ops/")
    assert page.url.endswith("/ops/login")
    page.get_by_label("Access token").fill(support_token(config, people["support"]))
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    assert page.url == f"{server}/ops/"
    assert page.get_by_role("heading", name="Held messages").is_visible()
    cookie = next(c for c in context.cookies() if c["name"] == "zr_ops_token")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ops"
    assert "zr_ops_token" not in page.evaluate("document.cookie")  # HttpOnly: out of reach of scripts

    # The held message, with both candidate landlords.
    card = page.locator(f'section.msg[data-message-id="{held["message_id"]}"]')
    assert card.is_visible()
    assert "the heating in my flat is off" in card.inner_text() and "ambiguous" in card.inner_text()
    rows = card.locator("tr", has=page.get_by_role("button", name="Assign & pin 30 days"))
    assert rows.count() == 2
    texts = sorted(rows.nth(i).inner_text() for i in range(2))
    assert "Greta Gable" in texts[0] and "Flat 3, 7 Willow Road" in texts[0] and "Maya Lund" in texts[0]
    assert "Hugo Hearth" in texts[1] and "Garage 12, Mill Lane" in texts[1]
    # Who is who: each candidate's email and id, and what the tenant said about them (nothing yet).
    assert people["greta"]["email"] in texts[0] and people["greta"]["id"] in texts[0] and "unconfirmed" in texts[0]
    assert people["hugo"]["email"] in texts[1] and "unconfirmed" in texts[1]
    keep = not SCREENSHOT.exists() or os.environ.get("ZR_UPDATE_SCREENSHOTS") == "1"
    page.screenshot(path=str(SCREENSHOT if keep else tmp_path / "ops-queue.png"))

    # Maya has confirmed neither landlord, so support says why it is Greta; assign & pin: the message leaves the queue.
    greta_row = card.locator("tr", has_text="Greta Gable")
    greta_row.get_by_label("Reason").fill("Maya confirmed Greta on the phone")
    with page.expect_navigation():
        greta_row.get_by_role("button", name="Assign & pin 30 days").click()
    assert page.url == f"{server}/ops/"
    assert (
        page.get_by_role("status").filter(has_text="Message delivered to the landlord, phone pinned until").is_visible()
    )
    assert page.locator(f'section.msg[data-message-id="{held["message_id"]}"]').count() == 0
    row = admin.execute(
        "select routing_status, landlord_id::text from public.whatsapp_messages where id = %s", [held["message_id"]]
    ).fetchone()
    assert row == {"routing_status": "delivered", "landlord_id": people["greta"]["id"]}

    # The tenant's next message goes straight to Greta.
    nxt = webhook(server, config, "Thanks, and the boiler pressure is low too.")
    assert (nxt["routing_status"], nxt["landlord_id"]) == ("delivered", people["greta"]["id"])
    rule = admin.execute(
        "select routing_metadata ->> 'rule' as rule from private.whatsapp_message_details where message_id = %s",
        [nxt["message_id"]],
    ).fetchone()["rule"]
    assert rule == "support_pin"
    page.reload()
    assert page.locator(f'section.msg[data-phone="{PHONE}"]').count() == 0
    context.close()

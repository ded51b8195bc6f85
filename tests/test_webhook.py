"""POST/GET /webhooks/whatsapp against the real local database.

Payloads in tests/payloads/ are shaped like Meta's; each test gives its wamids a unique suffix so
the file can be delivered again in a later run without colliding with what is already stored.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import PoolTimeout
from werkzeug.serving import make_server

from app.config import default_database_url
from app.logging_setup import kv
from app.service import create_app
from app.webhook import MAX_JSON_DEPTH, classify_db_error, sign, signature_is_valid

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = ROOT / "tests" / "payloads"
URL = "/webhooks/whatsapp"
ALICE = "00000000-0000-4000-a000-00000000a11c"
BOB = "00000000-0000-4000-a000-000000000b0b"

MESSAGE_TYPES = {
    # payload file -> type stored in whatsapp_messages
    "message_text": "text",
    "message_image": "image",
    "message_audio": "audio",
    "message_video": "video",
    "message_document": "document",
    "message_sticker": "sticker",
    "message_location": "location",
    "message_contacts": "contacts",
    "message_interactive_button_reply": "interactive",
    "message_interactive_list_reply": "interactive",
    "message_button": "button",
    "message_reaction": "reaction",
    "message_order": "order",
    "message_system": "system",
    "message_unsupported": "unsupported",
}


# -- helpers -------------------------------------------------------------------------------
def uniquify(node: Any, suffix: str) -> Any:
    """Append suffix to every wamid (message ids, status ids, context ids, reaction targets)."""
    if isinstance(node, dict):
        return {
            k: (
                v + suffix
                if k in ("id", "message_id") and isinstance(v, str) and v.startswith("wamid.")
                else uniquify(v, suffix)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [uniquify(v, suffix) for v in node]
    return node


def load(name: str, suffix: str) -> dict:
    return uniquify(json.loads((PAYLOADS / f"{name}.json").read_text()), suffix)


def message_wamids(payload: dict) -> list[str]:
    return [m["id"] for e in payload["entry"] for c in e["changes"] for m in c["value"].get("messages", [])]


def encode(payload: Any) -> bytes:
    return json.dumps(payload).encode() if not isinstance(payload, bytes) else payload


def post(client, payload: Any, secret: str, signature: str | None = "auto"):
    body = encode(payload)
    headers = {"Content-Type": "application/json"}
    if signature == "auto":
        headers["X-Hub-Signature-256"] = sign(body, secret)
    elif signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return client.post(URL, data=body, headers=headers)


def count(db, wamid: str) -> int:
    return db.execute("select count(*) as n from public.whatsapp_messages where wamid = %s", [wamid]).fetchone()["n"]


FINGERPRINT_TABLES = {
    "whatsapp_messages": "public.whatsapp_messages",
    "whatsapp_conversations": "public.whatsapp_conversations",
    "pending_message_statuses": "private.pending_message_statuses",
    "phone_preferences": "private.phone_preferences",
    "broadcasts": "realtime.messages",
    "webhook_errors": "private.webhook_errors",
}


def fingerprint(db) -> dict[str, Any]:
    """Per table the webhook can write to: its row count and a hash of every column (so a
    failure names exactly what changed)."""
    out: dict[str, Any] = {}
    for name, table in FINGERPRINT_TABLES.items():
        schema, rel = table.split(".")
        cols = [
            r["column_name"]
            for r in db.execute(
                "select column_name from information_schema.columns where table_schema = %s and table_name = %s "
                "order by ordinal_position",
                [schema, rel],
            ).fetchall()
        ]
        key = "ctid::text" if "id" not in cols else "id::text"
        hashes = ", ".join(f"md5(coalesce(string_agg(t.{c}::text, '|' order by t.{key}), '')) as {c}" for c in cols)
        row = db.execute(f"select count(*) as _rows, {hashes} from {table} t").fetchone()
        out.update({f"{name}.{k}": v for k, v in row.items()})
    db.rollback()
    return out


def changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


@pytest.fixture(scope="module")
def admin(config):
    """An autocommit superuser connection for setup that the webhook's own connections must see."""
    with psycopg.connect(config.database_url, autocommit=True, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture(scope="module", autouse=True)
def central_number(admin, config):
    """The payloads are for the configured central number (what scripts/run sets)."""
    admin.execute(
        "select public.configure_whatsapp(jsonb_build_object('phone_number_id', %s::text))", [config.phone_number_id]
    )
    return config.phone_number_id


@pytest.fixture()
def suffix() -> str:
    return "." + uuid.uuid4().hex[:12]


# -- handshake -----------------------------------------------------------------------------
def test_handshake_echoes_the_challenge_for_the_right_token(client, config):
    resp = client.get(
        URL,
        query_string={"hub.mode": "subscribe", "hub.verify_token": config.verify_token, "hub.challenge": "1158201444"},
    )
    assert resp.status_code == 200
    assert resp.mimetype == "text/plain"
    assert resp.get_data(as_text=True) == "1158201444"


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong-token", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "local-verify-token", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {},
    ],
    ids=["wrong-token", "wrong-mode", "no-token", "nothing"],
)
def test_handshake_refuses_anything_else(client, config, params):
    if params.get("hub.verify_token") == "local-verify-token":
        params = {**params, "hub.verify_token": config.verify_token}
    resp = client.get(URL, query_string=params)
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "verification_failed"
    assert resp.get_data(as_text=True) != "1"


# -- signature -----------------------------------------------------------------------------
def test_signature_helper_matches_a_known_vector():
    # HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog")
    assert (
        sign(b"The quick brown fox jumps over the lazy dog", "key")
        == "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )
    assert signature_is_valid(b"x", sign(b"x", "s"), "s")
    assert not signature_is_valid(b"x", sign(b"x", "s")[len("sha256=") :], "s")  # prefix required
    assert not signature_is_valid(b"x", sign(b"x", "s"), "")  # no secret configured -> nothing valid


def test_valid_signature_is_stored(client, config, db, suffix):
    payload = load("message_text", suffix)
    wamid = message_wamids(payload)[0]
    resp = post(client, payload, config.app_secret)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert count(db, wamid) == 1


@pytest.mark.parametrize("case", ["invalid", "missing", "altered", "wrong-secret", "no-prefix", "empty"])
def test_bad_signatures_are_refused_and_nothing_is_stored(client, config, db, suffix, case):
    payload = load("message_text", suffix)
    wamid = message_wamids(payload)[0]
    body = encode(payload)
    signature: str | None = sign(body, config.app_secret)
    if case == "invalid":
        signature = "sha256=" + "0" * 64
    elif case == "missing":
        signature = None
    elif case == "altered":
        # Signed, then changed in transit (the tenant's text and the wamid).
        body = body.replace(b"kitchen tap", b"front door").replace(wamid.encode(), (wamid + "X").encode())
        assert body != encode(payload)
    elif case == "wrong-secret":
        signature = sign(body, config.app_secret + "-not")
    elif case == "no-prefix":
        signature = signature[len("sha256=") :]
    elif case == "empty":
        signature = ""
    resp = post(client, body, config.app_secret, signature=signature)
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "invalid_signature"
    assert count(db, wamid) == 0
    assert count(db, wamid + "X") == 0


def test_signature_is_checked_before_the_body_is_parsed(client, config):
    resp = post(client, b"{not json", config.app_secret, signature="sha256=" + "f" * 64)
    assert resp.status_code == 401


# -- shape -----------------------------------------------------------------------------------
def dead_letters_since(db, after_id: int) -> list[dict[str, Any]]:
    rows = db.execute(
        "select id, source, error_code, error_message, item, body from private.webhook_dead_letters"
        " where id > %s order by id",
        [after_id],
    ).fetchall()
    db.rollback()
    return rows


def last_dead_letter_id(db) -> int:
    n = db.execute("select coalesce(max(id), 0) as n from private.webhook_dead_letters").fetchone()["n"]
    db.rollback()
    return n


def nested(depth: int, inner: str = "1") -> bytes:
    """An object whose value is `depth - 1` arrays deep: `depth` levels of nesting in all."""
    return ('{"object": ' + "[" * (depth - 1) + inner + "]" * (depth - 1) + "}").encode()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe\x00garbage", "invalid_json"),
        (b'{"object": NaN}', "invalid_json"),
        (b'{"object": 1e99999}', "invalid_json"),  # Postgres cannot store it (22003)
        (b"[1, 2]", "invalid_payload"),
        (b'"whatsapp_business_account"', "invalid_payload"),
        (b"", "invalid_json"),
        (nested(1_000), "too_deep"),  # was an uncaught RecursionError: 500, which Meta retries for days
        (b"[" * 200_000, "too_deep"),
        (nested(65), "too_deep"),
    ],
    ids=["broken", "not-utf8", "nan", "huge-exponent", "array", "string", "empty", "deep-1000", "deep-200k", "deep-65"],
)
def test_a_signed_body_it_cannot_use_is_kept_as_a_dead_letter_and_answered_200(client, config, db, body, code):
    before = last_dead_letter_id(db)
    resp = post(client, body, config.app_secret)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json() == {"dead_lettered": True}  # a retry could never fix it
    [kept] = dead_letters_since(db, before)
    assert (kept["source"], kept["error_code"], kept["item"]) == ("body", "22023", None)
    assert kept["error_message"].startswith(code + ": ")
    assert kept["body"] == body.decode("utf-8", "replace").replace("\x00", "\ufffd")


def test_nesting_up_to_the_limit_is_parsed(client, config, db):
    before = last_dead_letter_id(db)
    resp = post(client, nested(MAX_JSON_DEPTH), config.app_secret)
    assert resp.status_code == 200 and resp.get_json() == {"ignored": True}
    assert dead_letters_since(db, before) == []


@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "wrong-secret"], ids=["none", "zeros", "wrong"])
def test_an_unusable_body_badly_signed_is_refused_and_not_kept(client, config, db, signature):
    before = last_dead_letter_id(db)
    body = nested(1_000)
    if signature == "wrong-secret":
        signature = sign(body, config.app_secret + "-not")
    resp = post(client, body, config.app_secret, signature=signature)
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "invalid_signature"
    assert dead_letters_since(db, before) == []


def test_nul_and_lone_surrogates_become_u_fffd_and_the_neighbours_are_stored(client, config, db, suffix):
    """A \\u0000 anywhere made Postgres refuse the whole jsonb (22P05): the whole batch was lost."""
    payload = load("message_text", suffix)
    value = payload["entry"][0]["changes"][0]["value"]
    good = value["messages"][0]
    bad = {**good, "id": good["id"] + ".nul", "text": {"body": "tap\u0000drip \u202eevil"}, "x\u0000key": ["\u0000"]}
    value["messages"] = [bad, good]
    value["contacts"][0]["profile"]["name"] = "Tom \ud800Baker"
    text = json.dumps(payload)  # ensure_ascii: \u0000 and \ud800 escapes, as Meta would send them
    assert "\\u0000" in text and "\\ud800" in text
    resp = post(client, text.encode(), config.app_secret)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert [m["wamid"] for m in resp.get_json()["messages"]] == [bad["id"], good["id"]]
    row = db.execute(
        "select m.body, m.contact_name, d.raw from public.whatsapp_messages m"
        " join private.whatsapp_message_details d on d.message_id = m.id where m.wamid = %s",
        [bad["id"]],
    ).fetchone()
    assert row["body"] == "tap\ufffddrip \u202eevil"
    assert row["raw"]["x\ufffdkey"] == ["\ufffd"]
    assert row["contact_name"] == "Tom \ufffdBaker"
    assert count(db, good["id"]) == 1


def test_a_dead_letter_while_the_database_is_down_is_503(config):
    down = create_app(
        replace(config, database_url=default_database_url({"ZR_DB_PORT": "1"}), db_pool_timeout_s=0.5)
    )  # nothing listens on port 1
    try:
        resp = post(down.test_client(), nested(1_000), config.app_secret)
        assert resp.status_code == 503 and resp.get_json()["error"]["hint"]
    finally:
        down.extensions["zr_pool"].close(timeout=0)


def test_other_object_is_acknowledged_and_ignored(client, config, db, caplog):
    before = fingerprint(db)
    with caplog.at_level(logging.INFO, logger="app.webhook"):
        resp = post(client, json.loads((PAYLOADS / "other_object.json").read_text()), config.app_secret)
    assert resp.status_code == 200
    assert resp.get_json() == {"ignored": True}
    assert changed(before, fingerprint(db)) == []
    assert any("event=webhook.ignored" in r.getMessage() and "object=page" in r.getMessage() for r in caplog.records)


def test_body_over_3_mb_is_413_json(client, config):
    big = {"object": "whatsapp_business_account", "entry": [], "padding": "x" * (config.max_body_bytes + 1)}
    resp = post(client, big, config.app_secret)
    assert resp.status_code == 413
    assert resp.is_json and resp.get_json()["error"]["code"] == "request_entity_too_large"


def test_delivery_for_another_phone_number_is_kept_as_a_dead_letter(client, config, db, suffix):
    """A retry can never fix a change for another number: 200, and the change kept whole for support."""
    before = last_dead_letter_id(db)
    payload = load("other_phone_number", suffix)
    resp = post(client, payload, config.app_secret)
    assert resp.status_code == 200 and resp.get_json()["dead_letters"] == 1
    assert count(db, message_wamids(payload)[0]) == 0
    [dead] = dead_letters_since(db, before)
    assert (dead["source"], dead["error_code"]) == ("change", "22023")
    assert dead["item"] == payload["entry"][0]["changes"][0]


@pytest.mark.parametrize(
    ("mutate", "source"),
    [
        (lambda p: p.pop("entry"), "body"),
        (lambda p: p["entry"][0]["changes"][0]["value"]["messages"][0].pop("from"), "message"),
        (lambda p: p["entry"][0]["changes"][0]["value"]["messages"][0]["text"].pop("body"), "message"),
    ],
    ids=["no-entry", "message-without-from", "text-without-body"],
)
def test_a_malformed_item_is_kept_as_a_dead_letter_and_answered_200(client, config, db, suffix, mutate, source):
    before = last_dead_letter_id(db)
    payload = load("message_text", suffix)
    wamid = message_wamids(payload)[0]
    mutate(payload)
    resp = post(client, payload, config.app_secret)
    assert resp.status_code == 200 and resp.get_json()["dead_letters"] == 1
    assert count(db, wamid) == 0
    [dead] = dead_letters_since(db, before)
    assert dead["source"] == source and dead["error_code"] == "22023"


def test_one_bad_message_never_costs_its_neighbours(client, config, db, suffix):
    """The story: a signed batch with a valid message and one whose `from` is "123456" was refused whole."""
    before = last_dead_letter_id(db)
    payload = load("message_text", suffix)
    good = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    bad = {**good, "id": good["id"] + ".bad", "from": "123456"}
    payload["entry"][0]["changes"][0]["value"]["messages"].append(bad)
    resp = post(client, payload, config.app_secret)
    assert resp.status_code == 200
    summary = resp.get_json()
    assert [m["wamid"] for m in summary["messages"]] == [good["id"]] and summary["dead_letters"] == 1
    assert count(db, good["id"]) == 1 and count(db, bad["id"]) == 0
    [dead] = dead_letters_since(db, before)
    assert dead["item"] == bad  # kept whole


def test_other_errors_are_json_too(client):
    resp = client.put(URL)
    assert resp.status_code == 405 and resp.get_json()["error"]["code"] == "method_not_allowed"
    resp = client.get("/nowhere")
    assert resp.status_code == 404 and resp.is_json


# -- every message type, stored once -------------------------------------------------------------
@pytest.mark.parametrize("name", list(MESSAGE_TYPES))
def test_every_message_type_is_stored_once_and_redelivery_changes_nothing(client, config, db, suffix, name):
    payload = load(name, suffix)
    (wamid,) = message_wamids(payload)
    resp = post(client, payload, config.app_secret)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    summary = resp.get_json()
    assert [m["wamid"] for m in summary["messages"]] == [wamid]
    first = summary["messages"][0]
    assert first["duplicate"] is False
    assert first["routing_status"] == "delivered" and first["landlord_id"] == ALICE  # Tom is Alice's tenant
    row = db.execute(
        "select m.type, d.raw, m.landlord_id::text, m.conversation_id from public.whatsapp_messages m "
        "join private.whatsapp_message_details d on d.message_id = m.id where m.wamid = %s",
        [wamid],
    ).fetchone()
    assert row["type"] == MESSAGE_TYPES[name]
    assert row["raw"] == payload["entry"][0]["changes"][0]["value"]["messages"][0]  # nothing Meta sent is lost
    assert count(db, wamid) == 1
    db.rollback()

    before = fingerprint(db)
    again = post(client, payload, config.app_secret)
    assert again.status_code == 200
    assert again.get_json()["messages"][0]["duplicate"] is True
    assert again.get_json()["messages"][0]["message_id"] == first["message_id"]
    assert changed(before, fingerprint(db)) == []
    assert count(db, wamid) == 1


def test_mixed_batch_every_entry_change_message_and_status_once(client, config, db, suffix):
    payload = load("batch_mixed", suffix)
    wamids = message_wamids(payload)
    assert len(wamids) == 5
    resp = post(client, payload, config.app_secret)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    summary = resp.get_json()
    by_wamid = {m["wamid"]: m for m in summary["messages"]}
    assert list(by_wamid) == wamids  # every message of every change of every entry, in order
    assert [by_wamid[w]["routing_status"] for w in wamids] == [
        "delivered",
        "delivered",
        "delivered",
        "delivered",  # Dan shares his phone between Alice and Bob, but wrote to Alice's own number before
        "unknown_sender",
    ]
    assert [by_wamid[w]["landlord_id"] for w in wamids] == [ALICE, ALICE, BOB, ALICE, None]
    assert all(m["duplicate"] is False for m in summary["messages"])
    # Statuses for wamids not known yet are kept for later; Meta's errors are recorded.
    assert [(s["status"], s["applied"], s["pending"]) for s in summary["statuses"]] == [
        ("delivered", False, True),
        ("read", False, True),
    ]
    assert [e["code"] for e in summary["errors"]] == [131000]
    assert summary["skipped_changes"] == 1  # the template status update is not a message
    for w in wamids:
        assert count(db, w) == 1
    db.rollback()

    before = fingerprint(db)
    again = post(client, payload, config.app_secret)
    assert again.status_code == 200
    assert all(m["duplicate"] is True for m in again.get_json()["messages"])
    diff = changed(before, fingerprint(db))
    assert diff == [], f"a redelivered batch must change nothing; changed: {diff}"


# -- statuses ------------------------------------------------------------------------------------
def test_every_status_is_applied_once_and_redelivery_changes_nothing(client, config, admin, db, suffix):
    payload = load("statuses", suffix)
    statuses = payload["entry"][0]["changes"][0]["value"]["statuses"]
    wamid_a, wamid_b = statuses[0]["id"], statuses[3]["id"]
    # Two of Alice's outbound messages: A recorded by the sender with its wamid; B claimed but the
    # sender died before recording (no wamid): Meta's status names it in biz_opaque_callback_data.
    ids = {}
    for key, wamid, status in (("A", wamid_a, "sent"), ("B", None, "sending")):
        ids[key] = admin.execute(
            "insert into public.whatsapp_messages (direction, type, body, landlord_signature, status, routing_status,"
            " outbound_kind, landlord_id, tenant_phone, to_phone, is_from_tenant, wamid, claimed_at)"
            " values ('outgoing', 'text', 'Engineer on Thursday', 'From Alice Hart via ZenRent:', %s, 'outbound',"
            " 'text',"
            " %s, '447700900123', '447700900123', false, %s, now()) returning id::text as id",
            [status, ALICE, wamid],
        ).fetchone()["id"]
    body = json.dumps(payload).replace("CALLBACK_A", ids["A"]).replace("CALLBACK_B", ids["B"])

    resp = post(client, body.encode(), config.app_secret)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert [(s["wamid"], s["status"], s["applied"]) for s in resp.get_json()["statuses"]] == [
        (wamid_a, "sent", True),
        (wamid_a, "delivered", True),
        (wamid_a, "read", True),
        (wamid_b, "failed", True),
    ]
    rows = {
        r["id"]: r
        for r in db.execute(
            "select id::text, wamid, status, delivered_at, read_at, error_code from public.whatsapp_messages"
            " where id = any(%s::uuid[])",
            [list(ids.values())],
        ).fetchall()
    }
    a, b = rows[ids["A"]], rows[ids["B"]]
    assert a["status"] == "read" and a["delivered_at"] is not None and a["read_at"] is not None
    assert b["wamid"] == wamid_b and b["status"] == "failed" and b["error_code"] == 131026
    db.rollback()

    before = fingerprint(db)
    again = post(client, body.encode(), config.app_secret)
    assert again.status_code == 200
    diff = changed(before, fingerprint(db))
    assert diff == [], f"a redelivered status batch must change nothing; changed: {diff}"
    # A late 'sent' after 'read' does not move the status back.
    late = json.loads(body)
    late["entry"][0]["changes"][0]["value"]["statuses"] = [late["entry"][0]["changes"][0]["value"]["statuses"][0]]
    assert post(client, late, config.app_secret).status_code == 200
    assert (
        db.execute("select status from public.whatsapp_messages where id = %s", [ids["A"]]).fetchone()["status"]
        == "read"
    )


# -- logging ---------------------------------------------------------------------------------------
def test_logs_carry_wamid_and_routing_status_never_bodies_or_secrets(client, config, suffix, caplog):
    payload = load("message_text", suffix)
    (wamid,) = message_wamids(payload)
    with caplog.at_level(logging.DEBUG):
        assert post(client, payload, config.app_secret).status_code == 200
        post(client, payload, "wrong-secret")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert kv("webhook.message", wamid=wamid, routing_status="delivered") in text
    assert "event=webhook.bad_signature" in text
    for secret in ("kitchen tap", config.app_secret, config.verify_token, config.access_token, "Tom Baker"):
        assert secret not in text


# -- the database failing ---------------------------------------------------------------------------
def test_database_errors_map_to_503_400_or_500():
    transient = [
        psycopg.errors.SerializationFailure(),
        psycopg.errors.DeadlockDetected(),
        psycopg.errors.QueryCanceled(),
        psycopg.errors.AdminShutdown(),
        psycopg.OperationalError("gone"),
        psycopg.errors.CannotConnectNow(),
        psycopg.errors.ConnectionFailure(),
        PoolTimeout("slow"),
    ]
    assert [classify_db_error(e).status for e in transient] == [503] * len(transient)
    assert classify_db_error(psycopg.errors.InvalidParameterValue()).status == 400
    assert classify_db_error(psycopg.errors.UntranslatableCharacter()).status == 400
    assert classify_db_error(psycopg.errors.UndefinedFunction()).status == 500
    assert classify_db_error(psycopg.errors.InsufficientPrivilege()).status == 500


def test_statement_timeout_is_503_and_the_retry_is_stored_once(config, admin, db, suffix):
    app = create_app(replace(config, db_statement_timeout_ms=500))
    try:
        client = app.test_client()
        payload = load("message_text", suffix)
        (wamid,) = message_wamids(payload)
        with psycopg.connect(config.database_url) as locker:
            locker.execute("lock table public.whatsapp_messages in access exclusive mode")
            resp = post(client, payload, config.app_secret)
            assert resp.status_code == 503
            assert resp.get_json()["error"]["code"] == "57014"
        resp = post(client, payload, config.app_secret)  # Meta's retry
        assert resp.status_code == 200
        assert resp.get_json()["messages"][0]["duplicate"] is False
        assert count(db, wamid) == 1
    finally:
        app.extensions["zr_pool"].close()


def _scripts_db(action: str, port: int) -> None:
    env = {**os.environ, "ZR_DB_PORT": str(port)}
    subprocess.run(
        [str(ROOT / "scripts" / "db"), action],
        env=env,
        check=True,
        timeout=90,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_database_stopped_mid_request_is_503_and_the_retry_is_stored_exactly_once(config, suffix):
    # The cluster to stop is the one this run was told to use, never a default one.
    url = os.environ.get("DATABASE_URL")
    if not url:
        pytest.fail("set DATABASE_URL (scripts/test does) so that this test knows which cluster it may stop")
    assert url == config.database_url
    port = urlparse(url).port or 5432
    app = create_app(replace(config, db_pool_timeout_s=1.0, db_statement_timeout_ms=20000))
    client = app.test_client()
    payload = load("batch_mixed", suffix)
    wamids = message_wamids(payload)
    in_flight: dict[str, Any] = {}
    locker = psycopg.connect(config.database_url, autocommit=False)
    watcher = psycopg.connect(config.database_url, autocommit=True)
    try:
        assert client.get("/healthz").status_code == 200
        locker.execute("lock table public.whatsapp_messages in access exclusive mode")

        def deliver() -> None:
            in_flight["resp"] = post(client, payload, config.app_secret)

        worker = threading.Thread(target=deliver)
        worker.start()
        # Wait until the delivery is blocked inside the database, then stop the database under it.
        deadline = time.monotonic() + 10
        waiting = 0
        while not waiting and time.monotonic() < deadline:
            time.sleep(0.05)
            waiting = watcher.execute(
                "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and query like %s",
                ["%ingest_whatsapp_webhook%"],
            ).fetchone()[0]
        assert waiting, "the delivery never reached the database"
        try:
            _scripts_db("stop", port)
            worker.join(15)
            assert in_flight["resp"].status_code == 503
            assert in_flight["resp"].get_json()["error"]["hint"]
            # While the database is down, Meta's retries get 503 too.
            resp = post(client, payload, config.app_secret)
            assert resp.status_code == 503 and resp.is_json
        finally:
            _scripts_db("start", port)

        # Meta retries until it gets a 200; the first success stores everything once.
        deadline = time.monotonic() + 30
        while True:
            resp = post(client, payload, config.app_secret)
            if resp.status_code == 200 or time.monotonic() > deadline:
                break
            assert resp.status_code == 503
            time.sleep(0.5)
        assert resp.status_code == 200
        assert all(m["duplicate"] is False for m in resp.get_json()["messages"])
        again = post(client, payload, config.app_secret)
        assert all(m["duplicate"] is True for m in again.get_json()["messages"])
        with psycopg.connect(config.database_url) as conn:
            counts = [
                conn.execute("select count(*) from public.whatsapp_messages where wamid = %s", [w]).fetchone()[0]
                for w in wamids
            ]
        assert counts == [1] * len(wamids)
    finally:
        locker.close()
        watcher.close()
        app.extensions["zr_pool"].close()


# -- scripts/send-webhook ------------------------------------------------------------------------------
def test_send_webhook_script_signs_and_posts_a_file(app, config, db, tmp_path, suffix):
    payload = load("message_image", suffix)
    (wamid,) = message_wamids(payload)
    path = tmp_path / "image.json"
    path.write_text(json.dumps(payload))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}{URL}"
        env = {**os.environ, "WHATSAPP_APP_SECRET": config.app_secret}
        ok = subprocess.run(
            [str(ROOT / "scripts" / "send-webhook"), str(path), url],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.startswith("HTTP 200")
        assert json.loads(ok.stdout.split("\n", 1)[1])["messages"][0]["wamid"] == wamid
        assert count(db, wamid) == 1
        bad = subprocess.run(
            [str(ROOT / "scripts" / "send-webhook"), str(path), url],
            env={**env, "WHATSAPP_APP_SECRET": "not-the-secret"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert bad.returncode != 0 and bad.stdout.startswith("HTTP 401")
    finally:
        server.shutdown()


def test_a_routed_message_is_announced_only_on_its_landlords_private_topic(client, config, db, suffix):
    """LISTEN zenrent_whatsapp_inbound used to hand any database login every landlord's ids; the live
    inbox is now one private Realtime broadcast on the landlord's own topic, and nothing on LISTEN."""
    with psycopg.connect(config.database_url, autocommit=True) as listener:
        listener.execute("listen zenrent_whatsapp_inbound")
        resp = post(client, load("message_text", suffix), config.app_secret)
        routed = resp.get_json()["messages"][0]
        assert resp.status_code == 200 and routed["routing_status"] == "delivered"
        assert list(listener.notifies(timeout=1, stop_after=1)) == []
    rows = db.execute(
        "select topic, event, private from realtime.messages where payload ->> 'id' = %s", [routed["message_id"]]
    ).fetchall()
    assert rows == [{"topic": f"landlord:{routed['landlord_id']}", "event": "message", "private": True}]

"""The local Data API stand-in (app/local/dataapi.py) over real HTTP: PostgREST's semantics for
what the landlord client uses, JWT verification, PostgREST's error shapes and status codes, and
a hostile URL that never reaches SQL as anything but catalog-checked identifiers and bound values.

Reads use the seed data (Alice's multi-WABA history filed into four conversations; Bob has none of
it). Expectations are computed from the database as the superuser, with the policy written out,
so every assertion compares two independent answers.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from app.client import LandlordClient
from app.config import DEFAULT_DB_PORT, default_database_url
from app.local.dataapi import (
    ApiError,
    Auth,
    DataApi,
    DataApiConfig,
    DataApiServer,
    apply_request_settings,
    content_range,
    status_for_sqlstate,
)
from app.local.tokens import LOCAL_ANON_KEY, LOCAL_JWT_SECRET, LOCAL_SERVICE_ROLE_KEY, mint_token, token_for_email
from supabase import ClientOptions, create_client

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = default_database_url()
ALICE = "00000000-0000-4000-a000-00000000a11c"
BOB = "00000000-0000-4000-a000-000000000b0b"
CAROL = "00000000-0000-4000-a000-0000000ca201"
SARA = "00000000-0000-4000-c000-000000000008"  # Carol's tenant, active lease
TOM = "00000000-0000-4000-c000-000000000001"  # Alice's tenant, active lease
OTHER_SECRET = "not-the-secret-but-long-enough-to-be-accepted-1234567890"
MESSAGE_COLUMNS = "id,conversation_id,direction,status,body,sent_at,user_id,landlord_id"


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def api() -> Iterator[DataApiServer]:
    server = DataApiServer(
        DataApiConfig.from_env({"ZR_ENV": "development", "DATABASE_URL": DATABASE_URL}), port=0
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def admin() -> Iterator[psycopg.Connection]:
    with psycopg.connect(DATABASE_URL, autocommit=True, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture(scope="module")
def rest(api) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url + "/rest/v1", timeout=10) as client:
        yield client


def supa(api: DataApiServer, token: str | None, key: str = LOCAL_ANON_KEY):
    """A plain supabase-py client (no app code in between), as a landlord app would build it."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return create_client(
        api.url,
        key,
        ClientOptions(
            headers=headers,
            auto_refresh_token=False,
            persist_session=False,
            postgrest_client_retry=False,
            httpx_client=httpx.Client(timeout=10),
        ),
    )


def bearer(token: str | None, key: str | None = LOCAL_ANON_KEY) -> dict[str, str]:
    out = {"apikey": key} if key else {}
    if token is not None:
        out["Authorization"] = f"Bearer {token}"
    return out


ALICE_TOKEN = mint_token(ALICE, email="alice@zenrent.test")
BOB_TOKEN = mint_token(BOB, email="bob@zenrent.test")
CAROL_TOKEN = mint_token(CAROL, email="carol@zenrent.test")


def visible_message_ids(admin, landlord: str, where: str = "true", params: list | None = None) -> set[str]:
    """What the read policy lets a landlord see, computed as the superuser."""
    rows = admin.execute(
        f"select id::text from public.whatsapp_messages where (landlord_id = %s or user_id = %s) and ({where})",
        [landlord, landlord, *(params or [])],
    ).fetchall()
    return {r["id"] for r in rows}


FINGERPRINT_SQL = """
select (select count(*) from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
         where n.nspname in ('public', 'private', 'auth')) as relations,
       (select md5(coalesce(string_agg(t::text, '|' order by t.id), '')) from public.whatsapp_messages t) as messages,
       (select md5(coalesce(string_agg(t::text, '|' order by t.id), ''))
          from public.whatsapp_conversations t) as conversations,
       (select md5(coalesce(string_agg(t::text, '|' order by t.id), '')) from public.user_profiles t) as profiles,
       (select md5(coalesce(string_agg(t::text, '|' order by t.id), '')) from public.tenants t) as tenants,
       (select md5(coalesce(string_agg(t::text, '|' order by t.id), '')) from auth.users t) as users,
       (select md5(coalesce(string_agg(t::text, '|' order by t.phone), '')) from private.phone_preferences t) as prefs,
       (select md5(coalesce(string_agg(r.rolname || ':' || r.rolsuper || ':' || r.rolbypassrls, '|'
                                       order by r.rolname), ''))
          from pg_catalog.pg_roles r) as roles
"""


def fingerprint(admin) -> dict[str, Any]:
    return dict(admin.execute(FINGERPRINT_SQL).fetchone())


# -- reading: filters, order, pagination, counts --------------------------------------------------
FILTER_CASES = [
    ("eq", lambda q: q.eq("direction", "incoming"), "direction = 'incoming'"),
    ("neq", lambda q: q.neq("direction", "incoming"), "direction <> 'incoming'"),
    ("in", lambda q: q.in_("status", ["delivered", "sent"]), "status in ('delivered', 'sent')"),
    ("is null", lambda q: q.is_("conversation_id", "null"), "conversation_id is null"),
    ("not is null", lambda q: q.not_.is_("conversation_id", "null"), "conversation_id is not null"),
    ("lt", lambda q: q.lt("sent_at", "2026-10-01T08:40:00+00:00"), "sent_at < '2026-10-01T08:40:00+00:00'"),
    ("lte", lambda q: q.lte("sent_at", "2026-10-01T08:40:00+00:00"), "sent_at <= '2026-10-01T08:40:00+00:00'"),
    ("gt", lambda q: q.gt("sent_at", "2026-10-01T08:40:00+00:00"), "sent_at > '2026-10-01T08:40:00+00:00'"),
    ("gte", lambda q: q.gte("sent_at", "2026-10-01T08:40:00+00:00"), "sent_at >= '2026-10-01T08:40:00+00:00'"),
    (
        "or",
        lambda q: q.or_("direction.eq.outgoing,sent_at.lt.2025-01-01T00:00:00Z"),
        "direction = 'outgoing' or sent_at < '2025-01-01'",
    ),
    (
        "quoted in with a comma",
        lambda q: q.in_("body", ["Rent sent, thank you!", "nothing"]),
        "body = 'Rent sent, thank you!'",
    ),
]


@pytest.mark.parametrize("name,apply,where", FILTER_CASES, ids=[c[0] for c in FILTER_CASES])
def test_filters_mean_what_postgrest_says(api, admin, name, apply, where):
    expected = visible_message_ids(admin, ALICE, where)
    everything = visible_message_ids(admin, ALICE)
    assert expected and expected != everything, "the case must select some but not all of Alice's messages"
    rows = apply(supa(api, ALICE_TOKEN).table("whatsapp_messages").select(MESSAGE_COLUMNS)).execute().data
    assert {r["id"] for r in rows} == expected
    assert all(set(r) == set(MESSAGE_COLUMNS.split(",")) for r in rows)


def test_order_limit_offset_and_exact_count(api, admin):
    expected = [
        r["id"]
        for r in admin.execute(
            "select id::text from public.whatsapp_messages where landlord_id = %s or user_id = %s "
            "order by sent_at desc, id desc",
            [ALICE, ALICE],
        ).fetchall()
    ]
    assert len(expected) >= 4
    client = supa(api, ALICE_TOKEN)
    page = (
        client.table("whatsapp_messages")
        .select("id", count="exact")
        .order("sent_at", desc=True)
        .order("id", desc=True)
        .range(1, 2)
        .execute()
    )
    assert [r["id"] for r in page.data] == expected[1:3]
    assert page.count == len(expected)
    asc = client.table("whatsapp_messages").select("id,sent_at").order("sent_at").order("id").execute().data
    assert [r["id"] for r in asc] == [
        r["id"]
        for r in admin.execute(
            "select id::text from public.whatsapp_messages where landlord_id = %s or user_id = %s order by sent_at, id",
            [ALICE, ALICE],
        ).fetchall()
    ]


def test_nulls_first_and_last_are_honoured(api, admin):
    client = supa(api, ALICE_TOKEN)
    first = (
        client.table("whatsapp_messages")
        .select("id,conversation_id")
        .order("conversation_id", nullsfirst=True)
        .execute()
        .data
    )
    last = (
        client.table("whatsapp_messages")
        .select("id,conversation_id")
        .order("conversation_id", nullsfirst=False)
        .execute()
        .data
    )
    assert first[0]["conversation_id"] is None and first[-1]["conversation_id"] is not None
    assert last[-1]["conversation_id"] is None and last[0]["conversation_id"] is not None


def test_keyset_pages_with_nested_or_and_cover_everything_once(api, admin):
    expected = [
        r["id"]
        for r in admin.execute(
            "select id::text from public.whatsapp_messages where landlord_id = %s or user_id = %s "
            "order by sent_at desc, id desc",
            [ALICE, ALICE],
        ).fetchall()
    ]
    client = supa(api, ALICE_TOKEN)
    seen: list[str] = []
    cursor = None
    while True:
        q = client.table("whatsapp_messages").select("id,sent_at")
        if cursor:
            t, i = cursor
            q = q.or_(f'sent_at.lt."{t}",and(sent_at.eq."{t}",id.lt.{i})')
        rows = q.order("sent_at", desc=True).order("id", desc=True).limit(2).execute().data
        seen += [r["id"] for r in rows]
        if len(rows) < 2:
            break
        cursor = (rows[-1]["sent_at"], rows[-1]["id"])
    assert seen == expected


def test_content_range_and_range_status_like_postgrest(rest, admin):
    total = admin.execute(
        "select count(*) as n from public.whatsapp_conversations where landlord_id = %s", [ALICE]
    ).fetchone()["n"]
    assert total >= 3
    h = {**bearer(ALICE_TOKEN), "Prefer": "count=exact"}
    r = rest.get("/whatsapp_conversations", params={"select": "id", "limit": "2"}, headers=h)
    assert (r.status_code, r.headers["content-range"]) == (206, f"0-1/{total}")
    r = rest.get("/whatsapp_conversations", params={"select": "id", "offset": "1"}, headers=h)
    assert (r.status_code, r.headers["content-range"]) == (206, f"1-{total - 1}/{total}")
    r = rest.get("/whatsapp_conversations", params={"select": "id"}, headers=h)
    assert (r.status_code, r.headers["content-range"]) == (200, f"0-{total - 1}/{total}")
    r = rest.get("/whatsapp_conversations", params={"select": "id"}, headers=bearer(ALICE_TOKEN))
    assert (r.status_code, r.headers["content-range"]) == (200, f"0-{total - 1}/*")
    r = rest.get("/whatsapp_conversations", params={"select": "id", "status": "eq.blocked"}, headers=h)
    assert (r.status_code, r.headers["content-range"], r.json()) == (200, "*/0", [])
    r = rest.get("/whatsapp_conversations", params={"select": "id", "offset": str(total + 5)}, headers=h)
    assert r.status_code == 416 and r.json()["code"] == "PGRST103"
    assert r.headers["content-type"].startswith("application/json")
    assert content_range(0, 0, None) == "*/*" and content_range(3, 2, 10) == "3-4/10"


def test_singular_accept_header(rest, admin):
    one = admin.execute(
        "select id::text from public.whatsapp_conversations where landlord_id = %s limit 1", [ALICE]
    ).fetchone()["id"]
    h = {**bearer(ALICE_TOKEN), "Accept": "application/vnd.pgrst.object+json"}
    r = rest.get("/whatsapp_conversations", params={"select": "id,status", "id": f"eq.{one}"}, headers=h)
    assert r.status_code == 200 and r.json()["id"] == one
    r = rest.get("/whatsapp_conversations", params={"select": "id"}, headers=h)
    assert r.status_code == 406 and r.json()["code"] == "PGRST116"
    r = rest.get(
        "/whatsapp_conversations", params={"select": "id"}, headers={**bearer(ALICE_TOKEN), "Accept": "text/csv"}
    )
    assert r.status_code == 406 and r.json()["code"] == "PGRST107"


#: Every table a landlord reads, and how a row names its landlord (leases: through the property).
LANDLORD_TABLES = {
    "user_profiles": "select id::text from public.user_profiles where id = %s",
    "properties": "select id::text from public.properties where user_id = %s",
    "tenants": "select id::text from public.tenants where user_id = %s",
    "leases": "select l.id::text from public.leases l join public.properties p on p.id = l.property_id "
    "where p.user_id = %s",
    "whatsapp_conversations": "select id::text from public.whatsapp_conversations where landlord_id = %s",
    "whatsapp_messages": "select id::text from public.whatsapp_messages where landlord_id = %s or user_id = %s",
}


@pytest.mark.parametrize("table", sorted(LANDLORD_TABLES))
def test_default_select_star_answers_200_with_only_own_rows(api, rest, admin, table):
    """supabase-py's default select (`*`) works on every table a landlord reads, under RLS."""
    sql = LANDLORD_TABLES[table]
    for landlord, token in ((ALICE, ALICE_TOKEN), (BOB, BOB_TOKEN)):
        rows = supa(api, token).table(table).select("*").execute().data
        expected = {r["id"] for r in admin.execute(sql, [landlord] * sql.count("%s")).fetchall()}
        assert {r["id"] for r in rows} == expected, (table, landlord)
        assert expected or landlord != ALICE, f"the seed gives Alice {table} rows"  # so the check means something
        r = rest.get(f"/{table}", headers=bearer(token))  # no select parameter at all
        assert r.status_code == 200 and {x["id"] for x in r.json()} == expected, (table, landlord)


def test_routing_metadata_and_raw_are_unreachable_for_landlords(api, rest, admin):
    """They are not columns of any exposed table: no select, filter, order or embed reaches them."""
    for cols in ("id,routing_metadata", "raw"):
        r = rest.get("/whatsapp_messages", params={"select": cols}, headers=bearer(ALICE_TOKEN))
        assert r.status_code == 400 and r.json()["code"] == "42703", cols
    r = rest.get("/whatsapp_messages", params={"select": "routing_metadata->candidates"}, headers=bearer(ALICE_TOKEN))
    assert r.status_code == 400  # the stand-in refuses JSON paths outright (PGRST100); PostgREST answers 42703
    for params in ({"raw": "not.is.null"}, {"order": "routing_metadata"}):
        r = rest.get("/whatsapp_messages", params=params, headers=bearer(ALICE_TOKEN))
        assert r.status_code == 400, params
    # The private schema is not exposed by the Data API, for landlords and the service role alike.
    r = rest.get("/whatsapp_message_details", headers=bearer(ALICE_TOKEN))
    assert r.status_code == 404
    r = rest.get(
        "/whatsapp_messages", params={"select": "*"}, headers={**bearer(ALICE_TOKEN), "Accept-Profile": "private"}
    )
    assert r.status_code == 406
    star = supa(api, ALICE_TOKEN).table("whatsapp_messages").select("*").execute().data
    assert star and not {"raw", "routing_metadata"} & set(star[0])
    # ... and they are kept: the details of a routed message are in private.whatsapp_message_details.
    kept = admin.execute(
        "select count(*) as n from private.whatsapp_message_details d "
        "join public.whatsapp_messages m on m.id = d.message_id where m.user_id is not null"
    ).fetchone()["n"]
    assert kept > 0


# -- who is asking ------------------------------------------------------------------------------
def test_each_landlord_sees_exactly_their_rows(api, admin):
    for landlord, token in ((ALICE, ALICE_TOKEN), (BOB, BOB_TOKEN), (CAROL, CAROL_TOKEN)):
        client = supa(api, token)
        convs = client.table("whatsapp_conversations").select("id,landlord_id").execute().data
        expected = {
            r["id"]
            for r in admin.execute(
                "select id::text from public.whatsapp_conversations where landlord_id = %s", [landlord]
            ).fetchall()
        }
        assert {c["id"] for c in convs} == expected
        msgs = client.table("whatsapp_messages").select("id").execute().data
        assert {m["id"] for m in msgs} == visible_message_ids(admin, landlord)
        profiles = client.table("user_profiles").select("id").execute().data
        assert [p["id"] for p in profiles] == [landlord]
    assert visible_message_ids(admin, ALICE), "Alice must have rows for the isolation to mean something"


def test_other_landlords_ids_return_nothing(api, admin):
    conv = admin.execute(
        "select id::text from public.whatsapp_conversations where landlord_id = %s limit 1", [ALICE]
    ).fetchone()["id"]
    msg = next(iter(visible_message_ids(admin, ALICE)))
    bob = supa(api, BOB_TOKEN)
    assert bob.table("whatsapp_conversations").select("id").eq("id", conv).execute().data == []
    assert bob.table("whatsapp_messages").select("id").eq("id", msg).execute().data == []
    assert bob.table("whatsapp_messages").select("id").eq("conversation_id", conv).execute().data == []
    with pytest.raises(Exception) as err:
        bob.rpc("mark_conversation_read", {"conversation_id": conv}).execute()
    assert err.value.code == "P0002"


def test_service_role_key_and_anon_key_are_the_cli_ones(api, admin):
    total = admin.execute("select count(*) as n from public.whatsapp_conversations").fetchone()["n"]
    rows = supa(api, None, LOCAL_SERVICE_ROLE_KEY).table("whatsapp_conversations").select("id").execute().data
    assert len(rows) == total > 0
    with pytest.raises(Exception) as err:
        supa(api, None, LOCAL_ANON_KEY).table("whatsapp_conversations").select("id").execute()
    assert err.value.code == "42501"  # verified as anon, then refused by Postgres (not PGRST301)


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def _forged() -> dict[str, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)  # HS512 with our short key
        return _forge()


def _forge() -> dict[str, str]:
    now = int(time.time())
    alice_claims = jwt.decode(ALICE_TOKEN, LOCAL_JWT_SECRET, algorithms=["HS256"], audience="authenticated")
    head, _, sig = ALICE_TOKEN.split(".")
    return {
        "wrong secret": mint_token(ALICE, secret=OTHER_SECRET),
        "expired": mint_token(ALICE, now=now - 7200, expires_in=3600),
        "alg none": _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(alice_claims) + ".",
        "alg HS512": jwt.encode(alice_claims, LOCAL_JWT_SECRET, algorithm="HS512"),
        "payload swapped to Bob": head + "." + _b64({**alice_claims, "sub": BOB}) + "." + sig,
        "service_role with a wrong key": jwt.encode(
            {"role": "service_role", "iss": "supabase-demo", "exp": now + 600}, OTHER_SECRET, algorithm="HS256"
        ),
        "role postgres": mint_token(ALICE, role="postgres"),
        "role authenticator": mint_token(ALICE, role="authenticator"),
        "role supabase_admin": mint_token(ALICE, role="supabase_admin"),
        "no role claim": jwt.encode({"sub": ALICE, "aud": "authenticated", "exp": now + 600}, LOCAL_JWT_SECRET),
        "other audience": mint_token(ALICE, extra_claims={"aud": "some-other-api"}),
        "not yet valid": mint_token(ALICE, extra_claims={"nbf": now + 3600}),
        "garbage": "not-a-jwt",
        "three garbage parts": "a.b.c",
    }


@pytest.mark.parametrize("case", list(_forged()))
def test_bad_tokens_get_401_and_nothing(rest, admin, case):
    token = _forged()[case]
    before = fingerprint(admin)
    conv = admin.execute(
        "select id::text from public.whatsapp_conversations where landlord_id = %s limit 1", [ALICE]
    ).fetchone()["id"]
    r = rest.get("/whatsapp_conversations", params={"select": "id"}, headers=bearer(token))
    assert r.status_code == 401, r.text
    assert r.json()["code"] in ("PGRST301", "PGRST303") and "invalid_token" in r.headers["www-authenticate"]
    r = rest.post(
        "/rpc/set_conversation_status", json={"conversation_id": conv, "status": "blocked"}, headers=bearer(token)
    )
    assert r.status_code == 401 and r.json()["code"] in ("PGRST301", "PGRST303")
    assert fingerprint(admin) == before


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no headers at all"),
        pytest.param({"apikey": LOCAL_ANON_KEY}, id="apikey only"),
        pytest.param(bearer(LOCAL_ANON_KEY), id="anon key as bearer"),
    ],
)
def test_anon_gets_nothing(rest, admin, headers):
    before = fingerprint(admin)
    for table in ("whatsapp_conversations", "whatsapp_messages", "user_profiles", "tenants"):
        r = rest.get(f"/{table}", params={"select": "id"}, headers=headers)
        assert (r.status_code, r.json()["code"]) == (401, "42501"), table
        assert r.headers["www-authenticate"] == "Bearer"
    conv = admin.execute("select id::text from public.whatsapp_conversations limit 1").fetchone()["id"]
    r = rest.post("/rpc/mark_conversation_read", json={"conversation_id": conv}, headers=headers)
    assert (r.status_code, r.json()["code"]) == (401, "42501")
    assert fingerprint(admin) == before


@pytest.mark.parametrize("authorization", ["Bearer", "Basic YWxpY2U6c2VjcmV0", "Token abc"])
def test_malformed_authorization_is_401(rest, authorization):
    r = rest.get(
        "/whatsapp_conversations",
        params={"select": "id"},
        headers={"apikey": LOCAL_ANON_KEY, "Authorization": authorization},
    )
    assert r.status_code == 401 and r.json()["code"] == "PGRST301"


def test_concurrent_requests_keep_their_own_identity(api, admin):
    expected = {}
    for landlord in (ALICE, BOB, CAROL):
        expected[landlord] = {
            r["id"]
            for r in admin.execute(
                "select id::text from public.whatsapp_conversations where landlord_id = %s", [landlord]
            ).fetchall()
        }
    tokens = {ALICE: ALICE_TOKEN, BOB: BOB_TOKEN, CAROL: CAROL_TOKEN}
    failures: list[str] = []

    def worker(landlord: str) -> None:
        with httpx.Client(base_url=api.url + "/rest/v1", timeout=10) as c:
            for _ in range(5):
                got = {
                    r["id"]
                    for r in c.get(
                        "/whatsapp_conversations", params={"select": "id"}, headers=bearer(tokens[landlord])
                    ).json()
                }
                if got != expected[landlord]:
                    failures.append(f"{landlord} saw {got}")

    threads = [threading.Thread(target=worker, args=(who,)) for who in (ALICE, BOB, CAROL) * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


# -- RPCs -----------------------------------------------------------------------------------------
def test_rpc_result_shapes(api, rest, admin):
    alice = supa(api, ALICE_TOKEN)
    conv = admin.execute(
        "select id::text from public.whatsapp_conversations where landlord_id = %s and tenant_id = %s", [ALICE, TOM]
    ).fetchone()["id"]
    # scalar uuid -> a JSON string (the existing conversation: start is idempotent)
    assert alice.rpc("start_whatsapp_conversation", {"tenant_id": TOM}).execute().data == conv
    # jsonb -> the object itself
    state = alice.rpc("set_whatsapp_opt_in", {"enabled": True}).execute().data
    assert state["whatsapp_enabled"] is True and state["cancelled_messages"] == 0
    # void -> 204 without a body
    r = rest.post("/rpc/mark_conversation_read", json={"conversation_id": conv}, headers=bearer(ALICE_TOKEN))
    assert (r.status_code, r.content) == (204, b"")
    assert alice.rpc("mark_conversation_read", {"conversation_id": conv}).execute().data == []
    # TABLE(...) -> an array of objects
    service = bearer(LOCAL_SERVICE_ROLE_KEY, LOCAL_SERVICE_ROLE_KEY)
    r = rest.post("/rpc/reconcile_multi_waba_archive", json={}, headers=service)
    assert r.status_code == 200 and isinstance(r.json(), list)
    assert {row["landlord_id"] for row in r.json()} >= {ALICE}
    assert r.headers["content-range"].endswith("/*")


RPC_ERRORS = [
    # (token, function, args, status, code) - statuses as PostgREST's Error.hs maps them
    ("bob", "mark_conversation_read", "alice-conversation", 500, "P0002"),
    ("alice", "set_conversation_status", "bad-status", 400, "22023"),
    ("alice", "mark_conversation_read", {"conversation_id": "not-a-uuid"}, 400, "22P02"),
    ("carol", "start_whatsapp_conversation", {"tenant_id": SARA}, 500, "55000"),
    ("alice", "ingest_whatsapp_webhook", {"payload": {}}, 403, "42501"),
    ("anon", "ingest_whatsapp_webhook", {"payload": {}}, 401, "42501"),
    ("alice", "no_such_function", {}, 404, "PGRST202"),
    ("alice", "mark_conversation_read", {"conversation_id": str(uuid.uuid4()), "extra": 1}, 404, "PGRST202"),
    ("alice", "set_conversation_status", {"status": "active"}, 404, "PGRST202"),
]


@pytest.mark.parametrize("who,fn,args,status,code", RPC_ERRORS, ids=[f"{c[1]}-{c[4]}-{c[3]}" for c in RPC_ERRORS])
def test_rpc_errors_are_postgrest_shaped(rest, admin, who, fn, args, status, code):
    conv = admin.execute(
        "select id::text from public.whatsapp_conversations where landlord_id = %s limit 1", [ALICE]
    ).fetchone()["id"]
    if args == "alice-conversation":
        args = {"conversation_id": conv}
    elif args == "bad-status":
        args = {"conversation_id": conv, "status": "deleted"}
    token = {"alice": ALICE_TOKEN, "bob": BOB_TOKEN, "carol": CAROL_TOKEN, "anon": None}[who]
    before = fingerprint(admin)
    r = rest.post(f"/rpc/{fn}", json=args, headers=bearer(token))
    body = r.json()
    assert (r.status_code, body["code"]) == (status, code), body
    assert set(body) == {"code", "message", "details", "hint"} and body["message"]
    assert r.headers["proxy-status"] == f"PostgREST; error={code}"
    assert fingerprint(admin) == before


def test_rpc_errors_carry_message_hint_and_detail_keyword(api):
    with pytest.raises(Exception) as err:
        supa(api, BOB_TOKEN).rpc("mark_conversation_read", {"conversation_id": str(uuid.uuid4())}).execute()
    assert (err.value.code, err.value.message) == ("P0002", "conversation not found")
    assert err.value.details == "not_found"  # the stable keyword of docs/errors.md, from the DETAIL
    assert "whatsapp_conversations" in err.value.hint


@pytest.mark.parametrize(
    "body,content_type,status,code",
    [
        (b"{not json", "application/json", 400, "PGRST102"),
        (b"[1, 2]", "application/json", 400, "PGRST102"),
        (b'"a string"', "application/json", 400, "PGRST102"),
        (b'{"conversation_id": "a\\u0000b"}', "application/json", 400, "PGRST102"),
        (b"conversation_id=x", "application/x-www-form-urlencoded", 415, "PGRST107"),
    ],
)
def test_rpc_bodies_are_checked(rest, body, content_type, status, code):
    r = rest.post(
        "/rpc/mark_conversation_read", content=body, headers={**bearer(ALICE_TOKEN), "Content-Type": content_type}
    )
    assert (r.status_code, r.json()["code"]) == (status, code)


def test_unsupported_methods_are_refused_and_change_nothing(rest, admin):
    before = fingerprint(admin)
    r = rest.post("/tenants", json={"user_id": ALICE, "name": "Injected"}, headers=bearer(ALICE_TOKEN))
    assert (r.status_code, r.json()["code"]) == (405, "PGRST117")
    r = rest.request("DELETE", "/whatsapp_messages", params={"id": "not.is.null"}, headers=bearer(ALICE_TOKEN))
    assert r.status_code == 405
    r = rest.get(
        "/rpc/mark_conversation_read", params={"conversation_id": str(uuid.uuid4())}, headers=bearer(ALICE_TOKEN)
    )
    assert r.status_code == 405
    assert fingerprint(admin) == before


def test_status_mapping_is_postgrests():
    cases = {
        ("23505", True): 409,
        ("23503", True): 409,
        ("P0001", True): 400,
        ("P0002", True): 500,
        ("55000", True): 500,
        ("22023", True): 400,
        ("22P02", True): 400,
        ("42501", True): 403,
        ("42501", False): 401,
        ("42883", True): 404,
        ("42P01", True): 404,
        ("57014", True): 500,
        ("57P01", True): 503,
        ("08006", True): 503,
        ("25006", True): 405,
        ("53300", True): 503,
        ("53400", True): 500,
        ("54000", True): 500,
        ("40001", True): 500,
        ("28000", True): 403,
        ("PT402", True): 402,
        ("42P17", True): 500,
        ("XX000", True): 500,
        ("42703", True): 400,
    }
    assert {k: status_for_sqlstate(*k) for k in cases} == cases
    assert status_for_sqlstate("22023", True, 'role "postgres2" does not exist') == 401


# -- a hostile URL --------------------------------------------------------------------------------
HOSTILE_GETS = [
    # (path, params, acceptable statuses)
    ("/whatsapp_conversations", {"select": "id;drop table public.tenants"}, {400}),
    ("/whatsapp_conversations", {"select": "id,(select 1)"}, {400}),
    ("/whatsapp_conversations", {"select": "id::text"}, {400}),
    ("/whatsapp_conversations", {"select": '"id"'}, {400}),
    ("/whatsapp_conversations", {"select": "id,tenants(*)"}, {400}),
    ("/whatsapp_conversations", {"select": "t:tenant_id"}, {400}),
    ("/whatsapp_conversations", {"select": "count()"}, {400}),
    ("/whatsapp_conversations", {"select": "id)from public.tenants--"}, {400}),
    ("/whatsapp_conversations", {"select": "pg_sleep"}, {400}),
    ("/whatsapp_conversations", {"select": ""}, {400}),
    ("/whatsapp_conversations", {"order": "id;drop table public.tenants"}, {400}),
    ("/whatsapp_conversations", {"order": "id.desc;delete from public.whatsapp_messages"}, {400}),
    ("/whatsapp_conversations", {"order": "(select 1)"}, {400}),
    ("/whatsapp_conversations", {"order": "random()"}, {400}),
    ("/whatsapp_conversations", {"order": "id.desc.nullslast.extra"}, {400}),
    ("/whatsapp_conversations", {"order": "no_such_column"}, {400}),
    ("/whatsapp_conversations", {"1=1 or id": "eq.1"}, {400}),
    ("/whatsapp_conversations", {"id)or(1=1": "eq.1"}, {400}),
    ("/whatsapp_conversations", {'"id"': "eq.1"}, {400}),
    ("/whatsapp_conversations", {"tenants.id": "eq.1"}, {400}),
    ("/whatsapp_conversations", {"no_such_column": "eq.1"}, {400}),
    ("/whatsapp_conversations", {"id": "eq.x' or '1'='1"}, {400}),
    ("/whatsapp_conversations", {"id": "in.(1,2);drop table public.tenants"}, {400}),
    ("/whatsapp_conversations", {"status": "like.*"}, {400}),
    ("/whatsapp_conversations", {"status": "eq"}, {400}),
    ("/whatsapp_conversations", {"status": "is.nulll"}, {400}),
    ("/whatsapp_conversations", {"status": "sql.1=1"}, {400}),
    ("/whatsapp_conversations", {"or": "(id.eq.1,or(id.eq.2)"}, {400}),
    ("/whatsapp_conversations", {"or": "(status.eq.active))"}, {400}),
    ("/whatsapp_conversations", {"or": "(status.eq.active) or 1=1"}, {400}),
    ("/whatsapp_conversations", {"or": "(sql(1))"}, {400}),
    ("/whatsapp_conversations", {"or": "(tenant_id.eq.1;drop table x)"}, {400}),
    ("/whatsapp_conversations", {"or": '("id\\".eq.1)'}, {400}),
    ("/whatsapp_conversations", {"or": "(" * 50 + "status.eq.active" + ")" * 50}, {400}),
    ("/whatsapp_conversations", {"limit": "1;drop table public.tenants"}, {400}),
    ("/whatsapp_conversations", {"limit": "-1"}, {416}),
    ("/whatsapp_conversations", {"offset": "1e3"}, {400}),
    ("/whatsapp_conversations", {"limit": "9" * 40}, {400}),
    ("/whatsapp_conversations", {"status": "eq.a\x00b"}, {400}),
    ("/whatsapp_conversations;drop table public.tenants", {}, {404}),
    ("/private.tenant_landlord_routing", {}, {404}),
    ("/tenant_landlord_routing", {}, {404}),
    ("/auth.users", {}, {404}),
    ("/users", {}, {404}),
    ("/pg_authid", {}, {404}),
    ("/pg_catalog.pg_authid", {}, {404}),
    ("/..%2Fprivate%2Ftenant_landlord_routing", {}, {404}),
    ("/%22whatsapp_conversations%22", {}, {404}),
    ("/WHATSAPP_CONVERSATIONS", {}, {404}),
    ("/whatsapp_conversations%00", {}, {404}),
    ("/" + "x" * 300, {}, {404}),
]


@pytest.mark.parametrize(
    "path,params,statuses",
    HOSTILE_GETS,
    ids=[f"{i}:{c[0][:30]}:{list(c[1].items())}"[:80] for i, c in enumerate(HOSTILE_GETS)],
)
def test_hostile_reads_fail_safely(rest, admin, path, params, statuses):
    before = fingerprint(admin)
    for token in (ALICE_TOKEN, LOCAL_SERVICE_ROLE_KEY):
        r = rest.get(path, params=params, headers=bearer(token))
        assert r.status_code in statuses, (r.status_code, r.text)
        body = r.json()
        assert body["code"] and body["message"] and set(body) == {"code", "message", "details", "hint"}
    assert fingerprint(admin) == before


HOSTILE_RPCS = [
    ("/rpc/private.refresh_tenant_landlord_routing", {}, {404}),
    ("/rpc/is_opted_out", {"phone": "447700900123"}, {404}),
    ("/rpc/pg_sleep", {"seconds": 5}, {404}),
    ("/rpc/set_config", {"setting_name": "role", "new_value": "postgres", "is_local": False}, {404}),
    ("/rpc/refresh_tenant_landlord_routing", {}, {403}),
    ("/rpc/send_whatsapp_message;select 1", {}, {404}),
    ("/rpc/mark_conversation_read", {"conversation_id); drop table public.tenants; --": "x"}, {404}),
    ("/rpc/mark_conversation_read", {"conversation_id": "x'); drop table public.tenants; --"}, {400}),
    (
        "/rpc/set_conversation_status",
        {
            "conversation_id": "00000000-0000-4000-a000-00000000a11c",
            "status": "active'; update public.user_profiles set whatsapp_enabled = false; --",
        },
        {500},
    ),  # P0002: not a conversation of Alice's, and the status is never interpreted as SQL
    ("/rpc/", {}, {404}),
    ("/rpc/a/b", {}, {404}),
]


@pytest.mark.parametrize("path,args,statuses", HOSTILE_RPCS, ids=[c[0][:50] for c in HOSTILE_RPCS])
def test_hostile_calls_fail_safely(rest, admin, path, args, statuses):
    before = fingerprint(admin)
    r = rest.post(path, json=args, headers=bearer(ALICE_TOKEN))
    assert r.status_code in statuses, (r.status_code, r.text)
    assert r.json()["code"]
    assert fingerprint(admin) == before


def test_bound_values_are_only_values(api, admin):
    """SQL in a value of a text column is a string that matches nothing, not a syntax error."""
    rows = supa(api, ALICE_TOKEN).table("whatsapp_messages").select("id").eq("body", "x' or '1'='1").execute().data
    assert rows == []
    rows = (
        supa(api, ALICE_TOKEN)
        .table("whatsapp_messages")
        .select("id")
        .in_("body", ["'); drop table public.tenants; --"])
        .execute()
        .data
    )
    assert rows == []


@pytest.mark.parametrize(
    "header,value", [("Accept-Profile", "private"), ("Accept-Profile", "auth"), ("Content-Profile", "private")]
)
def test_only_the_public_schema_is_exposed(rest, header, value):
    if header == "Accept-Profile":
        r = rest.get("/users", params={"select": "id"}, headers={**bearer(ALICE_TOKEN), header: value})
    else:
        r = rest.post(
            "/rpc/refresh_tenant_landlord_routing",
            json={},
            headers={**bearer(LOCAL_SERVICE_ROLE_KEY, LOCAL_SERVICE_ROLE_KEY), header: value},
        )
    assert (r.status_code, r.json()["code"]) == (406, "PGRST106")


# -- what each transaction carries ----------------------------------------------------------------
def test_request_settings_are_set_like_postgrest():
    claims = {"sub": ALICE, "role": "authenticated", "aud": "authenticated", "email": "alice@zenrent.test"}
    headers = {"Accept": "application/json", "X-Client-Info": "test", "Cookie": "a=1; b=two"}
    query = (
        "select current_user, auth.uid()::text as uid, auth.role() as role,"
        " current_setting('request.jwt.claims', true) as claims,"
        " current_setting('request.method', true) as method, current_setting('request.path', true) as path,"
        " current_setting('request.headers', true) as headers,"
        " current_setting('request.cookies', true) as cookies,"
        " current_setting('statement_timeout') as timeout, current_setting('search_path') as search_path,"
        " current_setting('transaction_read_only') as read_only"
    )
    with psycopg.connect(DATABASE_URL, row_factory=dict_row) as conn:
        with conn.transaction():
            DataApi._begin(conn, read_only=True)
            apply_request_settings(
                conn, Auth("authenticated", claims), "GET", "/whatsapp_conversations", headers, ("public", "extensions")
            )
            row = conn.execute(query).fetchone()
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction) as err, conn.transaction():
                conn.execute("select public.set_whatsapp_opt_in(true)")
            assert status_for_sqlstate(err.value.sqlstate, True) == 405
        # (auth.uid() itself would fail here: see docs/dataapi.md on platform.sql's auth.uid() and '')
        after = conn.execute(
            "select current_user, current_setting('request.jwt.claims', true) as claims,"
            " current_setting('statement_timeout') as timeout,"
            " current_setting('transaction_read_only') as read_only"
        ).fetchone()
    assert row["current_user"] == "authenticated" and row["uid"] == ALICE and row["role"] == "authenticated"
    assert json.loads(row["claims"]) == claims
    assert (row["method"], row["path"]) == ("GET", "/whatsapp_conversations")
    assert json.loads(row["headers"]) == {"accept": "application/json", "x-client-info": "test"}
    assert json.loads(row["cookies"]) == {"a": "1", "b": "two"}
    assert row["timeout"] == "8s"  # alter role authenticated set statement_timeout, applied per request
    assert row["search_path"] == '"public", "extensions"' and row["read_only"] == "on"
    # All of it was transaction-local: the pooled connection is itself again afterwards.
    assert after["current_user"] == "postgres" and not after["claims"]
    assert after["read_only"] == "off" and after["timeout"] != "8s"


def test_config_refuses_short_secrets_and_reaches_postgres_as_authenticator():
    with pytest.raises(ValueError):
        DataApiConfig(database_url=DATABASE_URL, jwt_secret="short")
    config = DataApiConfig.from_env({"ZR_ENV": "development", "DATABASE_URL": DATABASE_URL})
    assert conninfo_to_dict(config.database_url)["user"] == "authenticator"
    assert config.jwt_secret == LOCAL_JWT_SECRET
    assert isinstance(ApiError(400, "PGRST100", "m").body(), dict)


# -- the scripts ----------------------------------------------------------------------------------
def _script_env() -> dict[str, str]:
    port = conninfo_to_dict(DATABASE_URL).get("port", DEFAULT_DB_PORT)
    return {**os.environ, "DATABASE_URL": DATABASE_URL, "ZR_DB_PORT": str(port)}


def test_dev_token_script_mints_tokens_the_client_can_use(api, admin):
    out = subprocess.run(
        [str(ROOT / "scripts/dev-token"), "alice@zenrent.test"],
        env=_script_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    claims = jwt.decode(token, LOCAL_JWT_SECRET, algorithms=["HS256"], audience="authenticated")
    assert (claims["sub"], claims["role"], claims["email"]) == (ALICE, "authenticated", "alice@zenrent.test")
    assert 3500 <= claims["exp"] - claims["iat"] <= 3600
    expected = {
        r["id"]
        for r in admin.execute(
            "select id::text from public.whatsapp_conversations where landlord_id = %s", [ALICE]
        ).fetchall()
    }
    with LandlordClient(api.url, LOCAL_ANON_KEY, token) as client:
        assert {str(c.id) for c in client.list_conversations(status=None, limit=100).items} == expected

    out = subprocess.run(
        [str(ROOT / "scripts/dev-token"), "bob@zenrent.test", "--role", "support", "--expires-in", "120"],
        env=_script_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    claims = jwt.decode(out.stdout.strip(), LOCAL_JWT_SECRET, algorithms=["HS256"], audience="authenticated")
    assert claims["sub"] == BOB and claims["app_metadata"]["role"] == "support"
    assert claims["exp"] - claims["iat"] == 120
    support = token_for_email(DATABASE_URL, "SUPPORT@zenrent.test")
    assert jwt.decode(support, options={"verify_signature": False})["app_metadata"]["role"] == "support"

    out = subprocess.run(
        [str(ROOT / "scripts/dev-token"), "nobody@zenrent.test"],
        env=_script_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1 and out.stdout == "" and "nobody@zenrent.test" in out.stderr


def test_dataapi_script_serves_and_stops_on_sigterm():
    proc = subprocess.Popen(
        [str(ROOT / "scripts/dataapi"), "--port", "0"],
        env=_script_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            match = re.search(r"url=(http://127\.0\.0\.1:\d+/rest/v1/)", line)
            url = match.group(1) if match else None
        assert url, "scripts/dataapi did not announce its URL"
        r = httpx.get(url + "user_profiles", params={"select": "id"}, headers=bearer(ALICE_TOKEN), timeout=10)
        assert r.status_code == 200 and [p["id"] for p in r.json()] == [ALICE]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0

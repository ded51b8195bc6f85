"""The multi-WABA history migration, end to end, in scratch databases.

A pre-migration database is built once (platform bootstrap, migrations up to and including the
multi-WABA baseline, a fixture of awkward legacy history) and cloned for each scenario, so every
scenario starts from exactly the same rows:

* ``single``      - the remaining migrations, then scripts/migrate_history.py in one batch;
* ``interrupted`` - one committed batch (--max-batches), a batch rolled back, a batch whose backend
                    is killed with pg_terminate_backend, then a resume in small batches from a
                    session in another time zone;
* ``concurrent``  - two sessions filing batches at once (SKIP LOCKED), the second waiting on the
                    conversation the first has just created, then a resume.

Every message of the fixture is asserted field by field against what the rules say; the two
disturbed runs must end in exactly the state of the single run; the archive must hold every
original row (waba_id included), unchanged, and be append-only; phase 3 must have retired the
accounts and erased their token references. The databases live on the server of DATABASE_URL and
are dropped afterwards; the main database is never touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from app.config import default_admin_database_url, default_database_url

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = sorted((ROOT / "supabase" / "migrations").glob("*.sql"))
PLATFORM = ROOT / "supabase" / "local" / "platform.sql"
REALTIME = ROOT / "supabase" / "local" / "realtime.sql"
STORAGE = ROOT / "supabase" / "local" / "storage.sql"
DRIVER = ROOT / "scripts" / "migrate_history.py"
BASELINE = "20261125090100"
DATABASE_URL = default_database_url()

# --- the fixture -----------------------------------------------------------------------------


def uid(kind: str, n: int) -> str:
    return f"00000000-0000-4000-{kind}-{n:012d}"


A, B, C = uid("a000", 1), uid("a000", 2), uid("a000", 3)  # landlords
PA1, PA2, PB1, PC1, PC2 = (uid("b000", n) for n in range(1, 6))  # properties
T1, T2, T3, T4, T5, T6, T7, T8, T9 = (uid("c000", n) for n in range(1, 10))  # tenants
ACC_A, ACC_B, ACC_C = (uid("d000", n) for n in range(1, 4))  # whatsapp_accounts


def mid(n: int) -> str:
    """Message ids sort in fixture order, so batch boundaries are known."""
    return uid("8000", n)


TOM, PRIYA, DAN, SUE, NORA, LUCIA, STRANGER = (
    "447700900123",
    "447700900456",
    "447700900555",
    "447700900777",
    "447700900888",
    "34612345678",
    "447911123456",
)

FIXTURE_SQL = f"""
insert into auth.users (id, aud, role, email) values
  ('{A}', 'authenticated', 'authenticated', 'alice@migration.test'),
  ('{B}', 'authenticated', 'authenticated', 'bob@migration.test'),
  ('{C}', 'authenticated', 'authenticated', 'carol@migration.test');
insert into public.user_profiles (id, full_name) values
  ('{A}', 'Alice Hart'), ('{B}', 'Bob Okafor'), ('{C}', 'Carol Singh');
insert into public.properties (id, user_id, address) values
  ('{PA1}', '{A}', '1 Rosemary Lane'), ('{PA2}', '{A}', '2 Rosemary Lane'), ('{PB1}', '{B}', '4 Canal Street'),
  ('{PC1}', '{C}', '7 Harbour View'), ('{PC2}', '{C}', '8 Harbour View');
insert into public.tenants (id, user_id, name, phone) values
  ('{T1}', '{A}', 'Tom Baker', '+44 7700 900123'),
  ('{T2}', '{A}', 'Priya Patel', '07700-900456'),          -- moved from PA1 to PA2
  ('{T3}', '{A}', 'Dan Wright', '0044 (7700) 900.555'),    -- same phone as T4, under Bob
  ('{T4}', '{B}', 'Daniel Wright', '07700 900 555'),
  ('{T5}', '{C}', 'Sam Nilsson', '+447700900777'),         -- T5 and T6 share a phone under Carol
  ('{T6}', '{C}', 'Sue Nilsson', '07700 900 777'),
  ('{T7}', '{A}', 'Nora Quinn', '07700 900888'),           -- only a lease that starts in 2027
  ('{T8}', '{A}', 'Ghost', 'ask the agent'),               -- no usable phone
  ('{T9}', '{B}', 'Lucia Gomez', '+34 612 345 678');       -- Bob's only, not Alice's
insert into public.leases (tenant_id, property_id, status, start_date, end_date) values
  ('{T1}', '{PA1}', 'active', '2025-01-01', null),
  ('{T2}', '{PA1}', 'ended', '2024-01-01', '2024-12-31'),
  ('{T2}', '{PA2}', 'active', '2025-02-01', null),
  ('{T3}', '{PA2}', 'active', '2025-03-01', null),
  ('{T4}', '{PB1}', 'active', '2025-04-01', null),
  ('{T5}', '{PC1}', 'ended', '2023-01-01', '2024-07-31'),
  ('{T6}', '{PC2}', 'ended', '2024-07-01', '2025-06-30'),
  ('{T7}', '{PA1}', 'pending', '2027-01-01', null),
  ('{T9}', '{PB1}', 'active', '2024-09-01', null);
insert into public.whatsapp_accounts (id, user_id, waba_id, phone_number_id, display_phone_number, status,
                                      access_token_ref, connected_at) values
  ('{ACC_A}', '{A}', '102290129340398', '106540352242922', '+44 20 7946 0001', 'connected', 'vault:waba/alice',
   '2024-03-01T09:00Z'),
  ('{ACC_B}', '{B}', '102290129340777', '106540352242777', '+44 20 7946 0002', 'disconnected', 'vault:waba/bob-old',
   '2024-05-01T09:00Z'),
  ('{ACC_C}', '{C}', '102290129340999', '106540352242999', null, 'pending', 'vault:waba/carol', null);
"""

# n: (landlord, from_phone, to_phone, direction, type, body, sent_at, wamid)
AL, BO, CA = "442079460001", "442079460002", "442079460003"
MESSAGES: dict[int, tuple] = {
    1: (A, "447700900123", AL, "incoming", "text", "The boiler is making a noise again", "2025-03-01T09:00Z"),
    2: (A, AL, "+44 7700 900123", "outgoing", "text", "An engineer comes on Thursday", "2025-03-01T09:05Z"),
    3: (A, "07700900123", AL, "incoming", "text", "Is the flat still free?", "2024-06-01T12:00Z"),
    4: (A, "0044 7700 900456", AL, "incoming", "text", "Rent sent", "2024-05-01T08:00Z"),
    5: (A, AL, "07700-900456", "outgoing", "text", "Keys for the new flat are ready", "2025-01-15T10:00Z"),
    6: (A, "+447700900456", AL, "incoming", "text", "Settled in, thanks!", "2025-06-01T10:00Z"),
    7: (A, "447700900555", AL, "incoming", "text", "Dan here, the flat door sticks", "2025-05-01T10:00Z"),
    8: (A, "447911123456", AL, "incoming", "text", "Is the flat still available?", "2025-04-01T10:00Z"),
    9: (A, AL, "07911 123456", "outgoing", "text", "Yes, viewing on Monday?", "2025-04-01T10:10Z"),
    10: (A, "447700900888", AL, "incoming", "image", None, "2025-02-01T10:00Z"),
    11: (A, "unknown", None, "incoming", "text", "who is this", "2025-02-02T10:00Z"),
    12: (B, "0044 7700 900555", BO, "incoming", "text", "Daniel: the parking gate is broken", "2025-05-02T10:00Z"),
    13: (B, BO, "07700900555", "outgoing", "template", "[template rent_reminder] May", "2025-05-03T10:00Z"),
    14: (C, "+447700900777", CA, "incoming", "text", "Sam: heating?", "2024-03-01T10:00Z"),
    15: (C, CA, "07700 900 777", "outgoing", "text", "Sue, welcome to number 8", "2025-01-10T10:00Z"),
    16: (C, "447700900777", CA, "incoming", "text", "moving day!", "2024-07-15T10:00Z"),
    17: (C, "447700900777", CA, "incoming", "text", "hello from before any lease", "2022-01-01T10:00Z"),
    18: (A, "447700900123", AL, "incoming", "text", "first of two in one second", "2025-07-01T12:00Z"),
    19: (A, "+44 7700 900 123", AL, "incoming", "text", "second of two in one second", "2025-07-01T12:00Z"),
    20: (C, "0044 7700 900 777", CA, "incoming", "text", "after both leases", "2025-08-01T10:00Z"),
    21: (A, "07700 900456", AL, "incoming", "text", "late on the last day of the gap", "2025-01-31T23:30Z"),
    22: (A, "+34 612 345 678", AL, "incoming", "text", "Lucia writing to the wrong landlord", "2025-05-05T10:00Z"),
    23: (B, "+34612345678", BO, "incoming", "text", "Lucia: all good", "2025-05-06T10:00Z"),
}


def messages_sql() -> str:
    rows = []
    for n, (landlord, frm, to, direction, typ, body, at) in MESSAGES.items():
        waba = {A: "102290129340398", B: "102290129340777", C: "102290129340999"}[landlord]
        wamid = "null" if n == 11 else f"'wamid.LEGACY{n:04d}'"
        rows.append(
            f"('{mid(n)}', '{landlord}', '{waba}', {wamid}, {lit(frm)}, {lit(to)}, '{direction}', '{typ}', {lit(body)},"
            f" '{'read' if direction == 'incoming' else 'delivered'}', '{at}',"
            f" timestamptz '{at}' + interval '1 minute', timestamptz '{at}' + interval '2 minutes')"
        )
    return (
        "insert into public.whatsapp_messages (id, user_id, waba_id, wamid, from_phone, to_phone, direction, type,"
        " body, status, sent_at, created_at, updated_at) values\n  " + ",\n  ".join(rows) + ";"
    )


def lit(v: str | None) -> str:
    return "null" if v is None else "'" + v.replace("'", "''") + "'"


# What the rules say for each message: landlord, tenant, property, conversation phone (None = no
# conversation), routing_status, rule, tenant_phone.
D, OUT, U = "delivered", "outbound", "unknown_sender"
EXPECTED: dict[int, tuple] = {
    1: (A, T1, PA1, TOM, D, "tenant_phone", TOM),
    2: (A, T1, PA1, TOM, OUT, "tenant_phone", TOM),  # outgoing: tenant is to_phone
    3: (A, T1, None, TOM, D, "tenant_phone", TOM),  # before any lease
    4: (A, T2, PA1, PRIYA, D, "tenant_phone", PRIYA),  # old lease
    5: (A, T2, None, PRIYA, OUT, "tenant_phone", PRIYA),  # between the leases
    6: (A, T2, PA2, PRIYA, D, "tenant_phone", PRIYA),  # after the move
    7: (A, T3, PA2, DAN, D, "tenant_phone", DAN),  # Alice's Dan
    8: (A, None, None, None, U, "no_tenant_with_phone", STRANGER),
    9: (A, None, None, None, U, "no_tenant_with_phone", STRANGER),
    10: (A, T7, None, NORA, D, "tenant_phone", NORA),  # only a pending lease, later
    11: (A, None, None, None, U, "no_tenant_with_phone", None),  # not a phone number
    12: (B, T4, PB1, DAN, D, "tenant_phone", DAN),  # Bob's Daniel, same phone
    13: (B, T4, PB1, DAN, OUT, "tenant_phone", DAN),
    14: (C, T5, PC1, SUE, D, "lease_active_at_message_time", SUE),  # only Sam's lease then
    15: (C, T6, PC2, SUE, OUT, "lease_active_at_message_time", SUE),  # only Sue's lease then
    16: (C, None, None, SUE, D, "ambiguous_tenant", SUE),  # both leases then
    17: (C, None, None, SUE, D, "ambiguous_tenant", SUE),  # neither lease yet
    18: (A, T1, PA1, TOM, D, "tenant_phone", TOM),
    19: (A, T1, PA1, TOM, D, "tenant_phone", TOM),
    20: (C, None, None, SUE, D, "ambiguous_tenant", SUE),  # neither lease any more
    21: (A, T2, None, PRIYA, D, "tenant_phone", PRIYA),  # 2025-01-31 UTC: in the gap
    22: (A, None, None, None, U, "no_tenant_with_phone", LUCIA),  # Bob's tenant, never Bob's inbox
    23: (B, T9, PB1, LUCIA, D, "tenant_phone", LUCIA),
}

# (landlord, phone): tenant, property, last_message_at, last_inbound_at, preview.
# tenant/property: of the conversation's newest message that names a tenant.
EXPECTED_CONVERSATIONS = {
    (A, TOM): (T1, PA1, "2025-07-01T12:00Z", "2025-07-01T12:00Z", "second of two in one second"),
    (A, PRIYA): (T2, PA2, "2025-06-01T10:00Z", "2025-06-01T10:00Z", "Settled in, thanks!"),
    (A, DAN): (T3, PA2, "2025-05-01T10:00Z", "2025-05-01T10:00Z", "Dan here, the flat door sticks"),
    (A, NORA): (T7, None, "2025-02-01T10:00Z", "2025-02-01T10:00Z", "[image]"),
    (B, DAN): (T4, PB1, "2025-05-03T10:00Z", "2025-05-02T10:00Z", "[template rent_reminder] May"),
    (B, LUCIA): (T9, PB1, "2025-05-06T10:00Z", "2025-05-06T10:00Z", "Lucia: all good"),
    (C, SUE): (T6, PC2, "2025-08-01T10:00Z", "2025-08-01T10:00Z", "after both leases"),
}

ORIGINAL_COLUMNS = (
    "id",
    "user_id",
    "wamid",
    "from_phone",
    "to_phone",
    "direction",
    "type",
    "body",
    "status",
    "sent_at",
    "created_at",
    "updated_at",
)


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


# --- scratch databases -----------------------------------------------------------------------


def url_of(dbname: str) -> str:
    return make_conninfo(DATABASE_URL, dbname=dbname)


def bootstrap(dbname: str) -> None:
    """supabase/local/platform.sql, then realtime.sql and storage.sql, in a scratch database, as
    supabase_admin (as scripts/db does)."""
    run_file(default_admin_database_url(dbname), PLATFORM)
    run_file(default_admin_database_url(dbname), REALTIME)
    run_file(default_admin_database_url(dbname), STORAGE)


def admin() -> psycopg.Connection:
    return psycopg.connect(DATABASE_URL, autocommit=True)


def run_file(url: str, path: Path) -> None:
    """Plain SQL execution of one file in one transaction, as `supabase db push` applies a migration."""
    with psycopg.connect(url) as conn:
        conn.execute("set client_min_messages = warning")
        conn.execute(path.read_text())


def apply_migrations(url: str, after: str | None, upto: str | None) -> None:
    for path in MIGRATIONS:
        version = path.name.split("_", 1)[0]
        if (after is None or version > after) and (upto is None or version <= upto):
            run_file(url, path)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Callable[[str, str | None], str]]:
    """make(suffix, template) -> url of a new database on the DATABASE_URL server; all dropped at the end."""
    prefix = f"zr_migration_{uuid.uuid4().hex[:10]}"
    made: list[str] = []

    def make(suffix: str, template: str | None = None) -> str:
        name = f"{prefix}_{suffix}"
        with admin() as conn:
            conn.execute(
                sql.SQL("create database {} template {}").format(
                    sql.Identifier(name), sql.Identifier(template or "template0")
                )
            )
        made.append(name)
        return name

    yield make
    with admin() as conn:
        for name in reversed(made):
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def premigration(scratch) -> tuple[str, dict[str, tuple]]:
    """The pre-migration database (used only as a template) and its message rows as they were."""
    name = scratch("pre")
    url = url_of(name)
    bootstrap(name)
    apply_migrations(url, None, BASELINE)
    with psycopg.connect(url) as conn:
        conn.execute(FIXTURE_SQL)
        conn.execute(messages_sql())
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"select {', '.join(ORIGINAL_COLUMNS)}, waba_id from public.whatsapp_messages").fetchall()
    return name, {str(r[0]): tuple(r) for r in rows}


def migrated_clone(scratch, premigration, suffix: str) -> str:
    """A copy of the pre-migration database with every later migration applied; nothing backfilled."""
    name = scratch(suffix, premigration[0])
    url = url_of(name)
    bootstrap(name)  # database-level settings are not copied from a template
    apply_migrations(url, BASELINE, None)
    return url


def migrate_history(url: str, *args: str, env: dict[str, str] | None = None) -> dict:
    """scripts/migrate_history.py against a scratch database; returns its --json summary."""
    proc = subprocess.run(
        [sys.executable, str(DRIVER), "--json", *args],
        env={**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(proc.stdout)


def backfill_batch(conn: psycopg.Connection, size: int) -> dict:
    """One batch as service_role, in the caller's (open) transaction."""
    conn.execute("set local role service_role")
    return conn.execute("select public.backfill_multi_waba_history(%s)", (size,)).fetchone()[0]


def final_state(url: str) -> tuple[dict, dict]:
    """Everything the backfill decides, comparable across databases: messages by id (conversation
    named by landlord and phone), conversations by (landlord, phone)."""
    with psycopg.connect(url) as conn:
        messages = {
            str(r[0]): r[1:]
            for r in conn.execute(
                """select m.id, m.landlord_id, m.tenant_id, m.property_id, cv.landlord_id, cv.tenant_phone,
                      m.tenant_phone, m.is_from_tenant, m.outbound_kind, m.routing_status, d.routing_metadata,
                      m.updated_at, m.conversation_id is null
               from public.whatsapp_messages m left join public.whatsapp_conversations cv on cv.id = m.conversation_id
               left join private.whatsapp_message_details d on d.message_id = m.id
               where m.user_id is not null"""
            )
        }
        conversations = {
            (str(r[0]), r[1]): r[2:]
            for r in conn.execute(
                """select landlord_id, tenant_phone, tenant_id, property_id, status, unread_count, last_message_at,
                      last_inbound_at, last_message_preview
               from public.whatsapp_conversations"""
            )
        }
    return messages, conversations


def differences(got: tuple[dict, dict], want: tuple[dict, dict]) -> list[str]:
    """What differs between two final states, readably."""
    out = []
    for label, g, w in (("message", got[0], want[0]), ("conversation", got[1], want[1])):
        for key in sorted(set(g) | set(w), key=str):
            if g.get(key) != w.get(key):
                out.append(f"{label} {key}: {g.get(key)!r} != {w.get(key)!r}")
    return out


def checksums_by_landlord(rows) -> dict[str, tuple[int, str]]:
    grouped: dict[str, list] = defaultdict(list)
    for row in rows:
        grouped[str(row[1])].append(row)
    return {
        landlord: (
            len(rs),
            hashlib.md5("\n".join(repr(r) for r in sorted(rs, key=lambda r: str(r[0]))).encode()).hexdigest(),
        )
        for landlord, rs in grouped.items()
    }


# --- the single run --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def single(scratch, premigration) -> tuple[str, dict]:
    url = migrated_clone(scratch, premigration, "single")
    summary = migrate_history(url, "--batch-size", "50000")
    return url, summary


def test_fixture_covers_every_message():
    assert set(EXPECTED) == set(MESSAGES)


def test_driver_report_counts_every_message(single):
    _, summary = single
    assert summary["this_run"] == {
        "seen": 23,
        "matched": 19,
        "unmatched": 4,
        "ambiguous": 3,
        "conversations_created": 7,
        "archived": 0,
    }
    assert summary["totals"]["pending"] == 0
    assert summary["totals"]["messages"] == 23
    assert summary["totals"]["archived"] == 23
    assert summary["totals"]["conversations"] == 7
    assert summary["landlords_not_reconciled"] == 0


@pytest.fixture(scope="module")
def single_state(single) -> tuple[dict, dict]:
    return final_state(single[0])


@pytest.mark.parametrize("n", sorted(EXPECTED))
def test_every_message_is_filed_by_the_rules(single_state, n):
    messages, _ = single_state
    landlord, tenant, prop, conv_phone, status, rule, tenant_phone = EXPECTED[n]
    (
        got_landlord,
        got_tenant,
        got_prop,
        conv_landlord,
        got_conv_phone,
        got_tenant_phone,
        from_tenant,
        kind,
        got_status,
        metadata,
        _updated_at,
        no_conversation,
    ) = messages[mid(n)]
    direction, typ = MESSAGES[n][3], MESSAGES[n][4]
    assert (str(got_landlord), got_tenant and str(got_tenant), got_prop and str(got_prop)) == (landlord, tenant, prop)
    assert got_status == status
    assert got_tenant_phone == tenant_phone
    assert from_tenant is (direction == "incoming")
    assert kind == (None if direction == "incoming" else ("template" if typ == "template" else "text"))
    if conv_phone is None:
        assert no_conversation
    else:
        assert (str(conv_landlord), got_conv_phone) == (landlord, conv_phone)
    assert metadata["source"] == "multi_waba_backfill"
    assert metadata["rule"] == rule
    if landlord == C and rule != "no_tenant_with_phone":
        assert metadata["tenant_candidates"] == sorted([T5, T6])
    else:
        assert "tenant_candidates" not in metadata
    assert metadata.get("phone_unparseable", False) is (n == 11)


def test_conversations_are_one_per_landlord_and_phone_with_history_counters(single_state):
    _, conversations = single_state
    assert set(conversations) == set(EXPECTED_CONVERSATIONS)
    for key, (tenant, prop, last_at, last_in, preview) in EXPECTED_CONVERSATIONS.items():
        got_tenant, got_prop, status, unread, got_last, got_in, got_preview = conversations[key]
        assert (got_tenant and str(got_tenant), got_prop and str(got_prop)) == (tenant, prop), key
        assert (status, unread) == ("active", 0), key
        assert (got_last, got_in, got_preview) == (ts(last_at), ts(last_in), preview), key


def test_a_tenant_of_two_landlords_lands_in_each_landlords_own_conversation(single_state):
    messages, _ = single_state
    for n in (7, 12, 13):
        landlord = MESSAGES[n][0]
        got = messages[mid(n)]
        assert (str(got[0]), str(got[3]), got[4]) == (landlord, landlord, DAN)


def test_no_row_is_lost_or_changed_archive_equals_live_per_landlord(single, premigration):
    url, _ = single
    original = premigration[1]
    with psycopg.connect(url) as conn:
        live = {
            str(r[0]): tuple(r)
            for r in conn.execute(
                f"select {', '.join(ORIGINAL_COLUMNS)} from public.whatsapp_messages where user_id is not null"
            )
        }
        archived = {
            str(r[0]): tuple(r)
            for r in conn.execute(f"select {', '.join(ORIGINAL_COLUMNS)}, waba_id from archive.multi_waba_messages")
        }
        reconcile = conn.execute(
            "select landlord_id, archived, live, matches from public.reconcile_multi_waba_archive()"
        ).fetchall()
    assert archived == original  # every column, waba_id included
    assert live == {k: v[:-1] for k, v in original.items()}  # updated_at kept: a backfill is not an edit
    expected = checksums_by_landlord(v[:-1] for v in original.values())
    assert checksums_by_landlord(live.values()) == expected
    assert checksums_by_landlord(v[:-1] for v in archived.values()) == expected
    assert {(str(r[0]), r[1], r[2], r[3]) for r in reconcile} == {
        (landlord, n, n, True) for landlord, (n, _) in expected.items()
    }


def test_reconciliation_notices_any_change_to_live_content(single):
    """A checksum that cannot see a value move to the neighbouring column proves nothing."""
    url, _ = single
    with psycopg.connect(url) as conn:

        def matches(landlord: str) -> bool:
            return conn.execute(
                "select matches from public.reconcile_multi_waba_archive() where landlord_id = %s", (landlord,)
            ).fetchone()[0]

        assert matches(A)
        with conn.transaction(force_rollback=True):
            conn.execute("update public.whatsapp_messages set body = body || '!' where id = %s", (mid(1),))
            assert not matches(A) and matches(B)
        with conn.transaction(force_rollback=True):  # message 11 has to_phone null: swap it into to_phone
            conn.execute(
                "update public.whatsapp_messages set to_phone = from_phone, from_phone = null where id = %s", (mid(11),)
            )
            assert not matches(A)
        with conn.transaction(force_rollback=True):
            conn.execute("update public.whatsapp_messages set body = '' where id = %s", (mid(10),))  # null -> ''
            assert not matches(A)
        with conn.transaction(force_rollback=True):
            conn.execute("delete from public.whatsapp_messages where id = %s", (mid(23),))
            assert not matches(B)


def test_archive_is_append_only_and_closed_to_api_roles(single):
    url, _ = single
    with psycopg.connect(url) as conn:
        for statement in (
            "update archive.multi_waba_messages set body = 'x'",
            "delete from archive.multi_waba_messages",
            "truncate archive.multi_waba_messages",
            "update archive.multi_waba_accounts set access_token_ref = null",
            "delete from archive.multi_waba_accounts",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute(statement)
        for role in ("service_role", "authenticated", "anon"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
                conn.execute("select count(*) from archive.multi_waba_messages")


def test_phase_three_retires_accounts_and_erases_tokens_keeping_the_originals_archived(single):
    url, _ = single
    with psycopg.connect(url) as conn:
        live = {
            str(r[0]): r[1:]
            for r in conn.execute("select id, status, access_token_ref, waba_id from public.whatsapp_accounts")
        }
        archived = {
            str(r[0]): r[1:]
            for r in conn.execute("select id, status, access_token_ref, waba_id from archive.multi_waba_accounts")
        }
        columns = {
            r[0]
            for r in conn.execute(
                "select column_name from information_schema.columns where table_schema = 'public'"
                " and table_name = 'whatsapp_messages'"
            )
        }
        archive_columns = {
            r[0]
            for r in conn.execute(
                "select column_name from information_schema.columns where table_schema = 'archive'"
                " and table_name = 'multi_waba_messages'"
            )
        }
    assert live == {
        ACC_A: ("migrated_to_centralized", None, "102290129340398"),
        ACC_B: ("disconnected", None, "102290129340777"),
        ACC_C: ("disconnected", None, "102290129340999"),
    }
    assert archived == {
        ACC_A: ("connected", "vault:waba/alice", "102290129340398"),
        ACC_B: ("disconnected", "vault:waba/bob-old", "102290129340777"),
        ACC_C: ("pending", "vault:waba/carol", "102290129340999"),
    }
    assert "waba_id" not in columns
    assert "waba_id" in archive_columns


def test_backfill_is_service_role_only_and_planned_for_each_batch(single):
    """A generic plan (PL/pgSQL's default from the sixth call in a session) joins the batch to its
    conversations in a nested loop: batch_size squared. Measured in bench/backfill.py; pinned here."""
    url, _ = single
    with psycopg.connect(url) as conn:
        config = conn.execute(
            "select proconfig from pg_proc where oid = 'public.backfill_multi_waba_history(integer)'::regprocedure"
        ).fetchone()[0]
        assert "plan_cache_mode=force_custom_plan" in config and 'search_path=""' in config
        for role in ("authenticated", "anon"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
                conn.execute("select public.backfill_multi_waba_history(1)")
        with pytest.raises(psycopg.errors.InvalidParameterValue), conn.transaction():
            backfill_batch(conn, 0)


def as_landlord(conn: psycopg.Connection, landlord: str) -> None:
    conn.execute("set local role authenticated")
    conn.execute(
        "select set_config('request.jwt.claims', %s, true)",
        (json.dumps({"sub": landlord, "role": "authenticated", "aud": "authenticated"}),),
    )


def test_landlords_read_but_cannot_write_their_retired_accounts(single):
    url, _ = single
    with psycopg.connect(url) as conn:
        with conn.transaction():
            as_landlord(conn, A)
            assert [str(r[0]) for r in conn.execute("select id from public.whatsapp_accounts")] == [ACC_A]
        for statement, params in (
            ("insert into public.whatsapp_accounts (user_id, waba_id, phone_number_id) values (%s, '1', '2')", (A,)),
            ("update public.whatsapp_accounts set display_phone_number = 'x' where id = %s", (ACC_A,)),
            ("update public.whatsapp_accounts set access_token_ref = 'vault:new' where id = %s", (ACC_A,)),
            ("delete from public.whatsapp_accounts where id = %s", (ACC_A,)),
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                as_landlord(conn, A)
                conn.execute(statement, params)


def test_each_landlord_sees_their_whole_history_and_nothing_else(single):
    url, _ = single
    with psycopg.connect(url) as conn:
        for landlord in (A, B, C):
            with conn.transaction():
                as_landlord(conn, landlord)
                seen = {str(r[0]) for r in conn.execute("select id from public.whatsapp_messages")}
                conversations = {
                    (str(r[0])) for r in conn.execute("select landlord_id from public.whatsapp_conversations")
                }
            assert seen == {mid(n) for n, m in MESSAGES.items() if m[0] == landlord}  # unknown senders included
            assert conversations == {landlord}


def test_rerunning_after_completion_changes_nothing(single):
    url, _ = single

    def snapshot() -> tuple:
        with psycopg.connect(url) as conn:
            return tuple(
                conn.execute(
                    f"select count(*), md5(string_agg(x::text, e'\\n' order by x::text)) from "
                    f"(select xmin::text as v, t.* from {table} t) x"
                ).fetchone()
                for table in (
                    "public.whatsapp_messages",
                    "public.whatsapp_conversations",
                    "archive.multi_waba_messages",
                    "archive.multi_waba_accounts",
                )
            )

    before = snapshot()
    summary = migrate_history(url, "--batch-size", "7")
    assert summary["this_run"]["seen"] == 0 and summary["batches"] == 1
    with psycopg.connect(url) as conn:
        assert backfill_batch(conn, 100) == {
            "seen": 0,
            "archived": 0,
            "matched": 0,
            "unmatched": 0,
            "ambiguous": 0,
            "conversations_created": 0,
            "remaining": 0,
        }
    assert snapshot() == before


# --- interruption and concurrency ------------------------------------------------------------


def pending(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select count(*) from public.whatsapp_messages where landlord_id is null and user_id is not null"
        ).fetchone()[0]


def test_an_interrupted_backfill_resumes_to_the_single_run_result(scratch, premigration, single):
    url = migrated_clone(scratch, premigration, "interrupted")

    first = migrate_history(url, "--batch-size", "3", "--max-batches", "1")  # a paused run
    assert (first["this_run"]["seen"], first["totals"]["pending"]) == (3, 20)

    with psycopg.connect(url) as conn:  # a batch rolled back
        batch = backfill_batch(conn, 4)
        assert (batch["seen"], batch["remaining"]) == (4, 16)  # exact below 10 batches
        conn.rollback()
    assert pending(url) == 20

    victim = psycopg.connect(url)  # a batch whose backend dies
    batch = backfill_batch(victim, 1)
    assert (batch["seen"], batch["remaining"]) == (1, 10)  # 19 left, counted up to 10
    pid = victim.info.backend_pid
    with psycopg.connect(url, autocommit=True) as killer:
        assert killer.execute("select pg_terminate_backend(%s, 5000)", (pid,)).fetchone()[0]
    with pytest.raises(psycopg.OperationalError):
        victim.execute("select 1")
    victim.close()
    assert pending(url) == 20

    # Resume from a session in another time zone; conversations split over batches (5 per batch).
    rest = migrate_history(url, "--batch-size", "5", env={"PGOPTIONS": "-c timezone=Pacific/Kiritimati"})
    assert rest["this_run"]["seen"] == 20 and rest["totals"]["pending"] == 0
    assert rest["landlords_not_reconciled"] == 0
    diff = differences(final_state(url), final_state(single[0]))
    assert not diff, "\n".join(diff)


def test_two_sessions_filing_one_new_conversation_at_once_match_the_single_run(scratch, premigration, single):
    """Session 1 files message 1 and creates Tom's conversation; session 2 (SKIP LOCKED) files
    message 2 of the same conversation and waits on that conversation until session 1 commits."""
    url = migrated_clone(scratch, premigration, "concurrent")
    first = psycopg.connect(url)
    second = psycopg.connect(url)
    try:
        assert backfill_batch(first, 1)["seen"] == 1
        result: dict = {}

        def file_second() -> None:
            try:
                result["batch"] = backfill_batch(second, 1)
                second.commit()
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                result["error"] = exc
                second.rollback()

        worker = threading.Thread(target=file_second)
        worker.start()
        deadline = time.monotonic() + 10
        with psycopg.connect(url, autocommit=True) as watcher:
            while (
                time.monotonic() < deadline
                and not watcher.execute(
                    "select wait_event_type = 'Lock' from pg_stat_activity where pid = %s", (second.info.backend_pid,)
                ).fetchone()[0]
            ):
                time.sleep(0.02)
        first.commit()
        worker.join(15)
        assert not worker.is_alive()
        assert "error" not in result, result.get("error")
        assert result["batch"]["seen"] == 1
    finally:
        first.close()
        second.close()

    rest = migrate_history(url, "--batch-size", "2")
    assert rest["totals"]["pending"] == 0 and rest["landlords_not_reconciled"] == 0
    diff = differences(final_state(url), final_state(single[0]))
    assert not diff, "\n".join(diff)

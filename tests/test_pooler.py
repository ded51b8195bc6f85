"""The pooler (issue 18): the RPCs and their locks are safe behind Supavisor / PgBouncer in
transaction mode, where every transaction may run on another server connection and the next
transaction on a server connection may be another client's.

Each test here goes through a real PgBouncer (Debian's, tests/pgbouncer.py) in `pool_mode =
transaction` in front of the test database, started and stopped by this module, with aliases of
the same database that differ only in their server pool size:

    zr         2 server connections   many client connections share them (concurrency tests)
    zr_single  1 server connection    every transaction runs on the same backend, one client
                                      after another: a setting that leaked would be seen
    zr_leaky   1 server connection    the negative control (session-level settings leak)
    zr_prepare 1 server connection    psycopg's automatic prepared statements colliding

What is proven, and how:
  a. webhooks: the same wamid delivered at once through different client connections (two app
     pools, i.e. two gunicorn workers, on the Flask app's own code path) is stored once; the
     advisory lock that serialises them is transaction-scoped (pg_advisory_xact_lock), shown
     holding one delivery while the other waits on another server connection; delivery
     statuses arriving at once never move a message's status backwards;
  b. claim_outbound_messages by concurrent claimers through the pooler hands each message out once;
  c. landlords under transaction_as_user (claims and role set local) see only their own rows even
     when their transactions run back to back on one server connection, concurrently too; the
     negative control shows that a session-level setting would leak there;
  d. statically, nothing in the migrated database's functions, views and policies nor in the
     deployed app code (app/, not the local stand-ins) uses session state; the detector is
     shown to flag each kind of offence;
  e. prepared statements and startup parameters: the app's direct-connection settings fail
     behind the pooler (the `options` startup parameter is refused; psycopg's automatic prepared
     statements collide, 42P05); ZR_DB_POOLER=transaction (app/config.py, app/db.py) turns both
     off and sets the statement timeout per transaction, which never outlives it.

These tests commit: they make their own landlords, tenants and phones and remove them afterwards.
"""

from __future__ import annotations

import ast
import json
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pglast
import psycopg
import pytest
from pglast import ast as sqlast
from pglast import enums
from pglast.parser import parse_plpgsql_json
from pglast.visitors import Visitor
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from app.config import POOLER_TRANSACTION, Config, ConfigError
from app.db import Pool, call_rpc, connection_kwargs, make_pool, transaction_as, transaction_as_user
from app.media import MediaConfig
from app.service import create_app
from app.webhook import sign
from conftest import DATABASE_URL, DEVELOPMENT
from pgbouncer import PgBouncer, PgBouncerMissing, find_binary
from queued import queued_system_messages
from test_sql_safety import DYNAMIC_STATEMENTS, FUNCTIONS, SCHEMAS, _constant_string, _expressions, _parsable

ROOT = Path(__file__).resolve().parent.parent
POOLS = {"zr": 2, "zr_single": 1, "zr_leaky": 1, "zr_prepare": 1}
WAIT_S = 10.0


# -- the pooler --------------------------------------------------------------------------------
def test_pgbouncer_is_installed() -> None:
    """Not a skip: without pgbouncer this module cannot prove anything, so it fails and says why."""
    try:
        find_binary()
    except PgBouncerMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def bouncer() -> Iterator[PgBouncer]:
    try:
        pgbouncer = PgBouncer(DATABASE_URL, POOLS).start()
    except PgBouncerMissing as exc:
        pytest.fail(str(exc))
    try:
        yield pgbouncer
    finally:
        pgbouncer.stop()


def behind(config: Config, bouncer: PgBouncer, alias: str, **changes: Any) -> Config:
    """The app's configuration with DATABASE_URL at the pooler, as a deploy with ZR_DB_POOLER=transaction."""
    return replace(config, database_url=bouncer.url(alias), db_pooler=POOLER_TRANSACTION, **changes)


def open_pool(config: Config, name: str) -> Pool:
    pool = make_pool(config, open_now=True, name=name)
    pool.wait(timeout=WAIT_S)
    return pool


def raw_client(bouncer: PgBouncer, alias: str, **kwargs: Any) -> psycopg.Connection[dict[str, Any]]:
    """A plain client connection through the pooler (no app settings): what another service would do."""
    return psycopg.connect(bouncer.url(alias), row_factory=dict_row, **kwargs)


def pooler_counts(bouncer: PgBouncer, alias: str) -> tuple[int, int]:
    """(client connections, server connections) PgBouncer holds for `alias` right now."""
    with bouncer.admin() as admin:
        clients = [r for r in admin.execute("show clients").fetchall() if r["database"] == alias]
        servers = [r for r in admin.execute("show servers").fetchall() if r["database"] == alias]
    return len(clients), len(servers)


# -- committed test data -----------------------------------------------------------------------
@dataclass(frozen=True)
class Landlord:
    id: uuid.UUID
    phone: str  # the tenant's phone, digits only (as WhatsApp sends it)
    conversation_id: uuid.UUID | None = None

    @property
    def claims(self) -> dict[str, Any]:
        return {"sub": str(self.id), "role": "authenticated", "aud": "authenticated"}


def _create_landlord(conn: psycopg.Connection, tag: str) -> Landlord:
    landlord_id = uuid.uuid4()
    phone = f"4474008{random.randint(0, 99999):05d}"  # 074008xxxxx: in no seed, pgTAP file or other test
    conn.execute(
        "insert into auth.users (id, aud, role, email) values (%s, 'authenticated', 'authenticated', %s)",
        [landlord_id, f"pooler-{tag}-{landlord_id}@test.zenrent"],
    )
    conn.execute(
        """insert into public.user_profiles (id, full_name, whatsapp_enabled, whatsapp_opted_in_at,
                                            whatsapp_notifications_enabled)
           values (%s, %s, true, now(), false)""",
        [landlord_id, f"Pooler {tag}"],
    )
    property_id = conn.execute(
        "insert into public.properties (user_id, address) values (%s, '1 Pool Lane') returning id", [landlord_id]
    ).fetchone()[0]
    tenant_id = conn.execute(
        "insert into public.tenants (user_id, name, phone) values (%s, %s, %s) returning id",
        [landlord_id, f"Tenant of {tag}", "+" + phone],
    ).fetchone()[0]
    conn.execute(
        "insert into public.leases (tenant_id, property_id, status, start_date)"
        " values (%s, %s, 'active', '2025-01-01')",
        [tenant_id, property_id],
    )
    return Landlord(landlord_id, phone)


def _remove_landlords(landlords: list[Landlord]) -> None:
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        for landlord in landlords:
            conn.execute("delete from public.whatsapp_messages where tenant_phone = %s", [landlord.phone])
            conn.execute("delete from public.whatsapp_conversations where tenant_phone = %s", [landlord.phone])
            conn.execute("delete from private.phone_preferences where phone = %s", [landlord.phone])
            conn.execute("delete from auth.users where id = %s", [landlord.id])  # cascades to profile, tenant, lease


@pytest.fixture(scope="module")
def central_number(config: Config) -> str:
    """Webhooks are accepted for the configured central number only (scripts/run stores it)."""
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute(
            "select public.configure_whatsapp(jsonb_build_object('phone_number_id', %s::text))",
            [config.phone_number_id],
        )
    return config.phone_number_id


@pytest.fixture()
def landlord(central_number: str) -> Iterator[Landlord]:
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        made = _create_landlord(conn, "a")
    try:
        yield made
    finally:
        _remove_landlords([made])


@pytest.fixture()
def two_landlords(central_number: str) -> Iterator[tuple[Landlord, Landlord]]:
    """Two landlords, each with one conversation holding one message from their tenant."""
    made: list[Landlord] = []
    try:
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            for tag in ("one", "two"):
                plain = _create_landlord(conn, tag)
                made.append(plain)
                with conn.transaction():
                    conn.execute("set local role service_role")
                    routed = conn.execute(
                        "select public.route_inbound_message(%s)",
                        [Jsonb(text_message(f"wamid.POOL_{uuid.uuid4().hex}", plain.phone, f"Hello {tag}"))],
                    ).fetchone()[0]
                made[-1] = replace(plain, conversation_id=uuid.UUID(routed["conversation_id"]))
        yield made[0], made[1]
    finally:
        _remove_landlords(made)


def text_message(wamid: str, phone: str, body: str) -> dict[str, Any]:
    return {"from": phone, "id": wamid, "timestamp": str(int(time.time())), "type": "text", "text": {"body": body}}


def webhook(phone_number_id: str, **value: list[dict[str, Any]]) -> bytes:
    """A signed-ready webhook body for the central number with `messages=[...]` / `statuses=[...]`."""
    return json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "102290129340500",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": "442045770000",
                                    "phone_number_id": phone_number_id,
                                },
                                **value,
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()


def run_together(n: int, work: Callable[[int, threading.Barrier], Any]) -> list[Any]:
    """Run work(i, barrier) in n threads that start together; their results, or the first error."""
    barrier = threading.Barrier(n, timeout=WAIT_S)
    with ThreadPoolExecutor(max_workers=n) as executor:
        futures = [executor.submit(work, i, barrier) for i in range(n)]
        return [f.result(timeout=60) for f in futures]


# == a. webhooks: exactly once, statuses never backwards ===========================================
def test_duplicate_deliveries_on_two_server_connections_wait_on_the_transaction_lock(
    config: Config, bouncer: PgBouncer, landlord: Landlord, central_number: str
) -> None:
    """Two deliveries of one wamid, each through its own app pool (two workers), overlap on two
    server connections: the second waits on the first's pg_advisory_xact_lock (seen in pg_locks)
    until the first commits, then reports a duplicate. One message is stored."""
    wamid = f"wamid.POOL_{uuid.uuid4().hex}"
    body = webhook(central_number, messages=[text_message(wamid, landlord.phone, "Is the boiler fixed?")]).decode()
    pools = [open_pool(behind(config, bouncer, "zr", db_pool_min=1, db_pool_max=1), f"worker-{i}") for i in (1, 2)]
    release = threading.Event()
    pids: list[int] = []

    def deliver(i: int, barrier: threading.Barrier) -> tuple[int, dict[str, Any]]:
        with transaction_as(pools[i]) as conn:
            pid = conn.execute("select pg_backend_pid() as pid").fetchone()["pid"]
            pids.append(pid)
            barrier.wait()
            summary = conn.execute("select public.ingest_whatsapp_webhook(%s::jsonb) as r", [body]).fetchone()["r"]
            if not release.wait(WAIT_S):
                raise AssertionError("the other delivery never waited on this one")
        return pid, summary

    try:
        with ThreadPoolExecutor(max_workers=2) as executor:
            barrier = threading.Barrier(2, timeout=WAIT_S)
            futures = [executor.submit(deliver, i, barrier) for i in (0, 1)]
            saw_wait = False
            with psycopg.connect(DATABASE_URL, autocommit=True) as watcher:
                deadline = time.monotonic() + WAIT_S
                while time.monotonic() < deadline and not saw_wait:
                    saw_wait = watcher.execute(
                        "select exists (select from pg_locks where locktype = 'advisory' and not granted"
                        " and pid = any(%s))",
                        [pids],
                    ).fetchone()[0]
                    time.sleep(0.005)
            release.set()
            results = [f.result(timeout=WAIT_S) for f in futures]
    finally:
        for pool in pools:
            pool.close()

    assert saw_wait, "the deliveries did not overlap: neither waited on the other's advisory lock"
    assert len({pid for pid, _ in results}) == 2, "both deliveries ran on one server connection"
    duplicates = sorted(summary["messages"][0]["duplicate"] for _, summary in results)
    assert duplicates == [False, True]
    with psycopg.connect(DATABASE_URL) as conn:
        stored = conn.execute("select count(*) from public.whatsapp_messages where wamid = %s", [wamid]).fetchone()
    assert stored == (1,)


def test_many_workers_posting_the_same_webhooks_store_each_message_once(
    config: Config, bouncer: PgBouncer, landlord: Landlord, central_number: str
) -> None:
    """Twelve threads post one signed webhook of three messages to two Flask apps (two gunicorn
    workers, four client connections each) sharing two server connections: every message is
    stored once, reported new exactly once, and counted once in the conversation."""
    wamids = [f"wamid.POOL_{uuid.uuid4().hex}" for _ in range(3)]
    body = webhook(
        central_number, messages=[text_message(w, landlord.phone, f"Message {i}") for i, w in enumerate(wamids)]
    )
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, config.app_secret)}
    apps = [create_app(behind(config, bouncer, "zr", db_pool_min=4, db_pool_max=4)) for _ in range(2)]
    try:
        for app in apps:
            app.extensions["zr_pool"].wait(timeout=WAIT_S)

        def post(i: int, barrier: threading.Barrier) -> tuple[int, Any]:
            client = apps[i % 2].test_client()
            barrier.wait()
            resp = client.post("/webhooks/whatsapp", data=body, headers=headers)
            return resp.status_code, resp.get_json()

        responses = run_together(12, post)
        clients, servers = pooler_counts(bouncer, "zr")
    finally:
        for app in apps:
            app.extensions["zr_pool"].close()

    assert [status for status, _ in responses] == [200] * 12, responses
    new = Counter(m["wamid"] for _, summary in responses for m in summary["messages"] if not m["duplicate"])
    assert new == dict.fromkeys(wamids, 1)
    assert clients >= 8 and servers <= POOLS["zr"], (clients, servers)
    with psycopg.connect(DATABASE_URL) as conn:
        stored = conn.execute(
            "select wamid, count(*) from public.whatsapp_messages where wamid = any(%s) group by 1", [wamids]
        ).fetchall()
        unread = conn.execute(
            "select unread_count from public.whatsapp_conversations where landlord_id = %s and tenant_phone = %s",
            [landlord.id, landlord.phone],
        ).fetchall()
    assert dict(stored) == dict.fromkeys(wamids, 1)
    assert unread == [(3,)]


STATUS_RANK = {"sending": 0, "sent": 1, "delivered": 2, "read": 3}


def test_statuses_arriving_at_once_never_move_a_message_backwards(
    config: Config, bouncer: PgBouncer, landlord: Landlord, central_number: str
) -> None:
    """Twelve threads post sent / delivered / read for one outbound message at once, each status
    four times, through two apps sharing two server connections. A watcher reading the row all
    the while never sees its status go down; it ends read, with delivered_at and read_at."""
    wamid = f"wamid.POOL_OUT_{uuid.uuid4().hex}"
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        message_id = conn.execute(
            "insert into public.whatsapp_messages (direction, type, body, landlord_signature, status, routing_status,"
            " outbound_kind, landlord_id, tenant_phone, to_phone, is_from_tenant, wamid, claimed_at)"
            " values ('outgoing', 'text', 'Engineer on Thursday', 'From Pooler a via ZenRent:', 'sending', 'outbound',"
            " 'text', %s, %s, %s, false, %s, now()) returning id",
            [landlord.id, landlord.phone, landlord.phone, wamid],
        ).fetchone()[0]
    now = int(time.time())
    order = ["read", "delivered", "sent"] * 4  # the latest first: the worst order for a naive update
    bodies = [
        webhook(
            central_number,
            statuses=[
                {"id": wamid, "status": s, "timestamp": str(now + STATUS_RANK[s]), "recipient_id": landlord.phone}
            ],
        )
        for s in order
    ]
    apps = [create_app(behind(config, bouncer, "zr", db_pool_min=4, db_pool_max=4)) for _ in range(2)]
    seen: list[str] = []
    done = threading.Event()

    def watch() -> None:
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            while not done.is_set():
                row = conn.execute("select status from public.whatsapp_messages where id = %s", [message_id]).fetchone()
                seen.append(row[0])

    def post(i: int, barrier: threading.Barrier) -> int:
        client = apps[i % 2].test_client()
        body = bodies[i]
        barrier.wait()
        return client.post(
            "/webhooks/whatsapp",
            data=body,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, config.app_secret)},
        ).status_code

    watcher = threading.Thread(target=watch, name="status-watcher")
    try:
        for app in apps:
            app.extensions["zr_pool"].wait(timeout=WAIT_S)
        watcher.start()
        codes = run_together(len(bodies), post)
    finally:
        done.set()
        watcher.join(timeout=WAIT_S)
        for app in apps:
            app.extensions["zr_pool"].close()

    assert codes == [200] * len(bodies)
    ranks = [STATUS_RANK[s] for s in seen]
    assert ranks == sorted(ranks), f"the status went backwards: {seen}"
    with psycopg.connect(DATABASE_URL, row_factory=dict_row) as conn:
        row = conn.execute(
            "select status, delivered_at is not null as delivered, read_at is not null as read"
            " from public.whatsapp_messages where id = %s",
            [message_id],
        ).fetchone()
    assert row == {"status": "read", "delivered": True, "read": True}


# == b. claims: each queued message handed out once ================================================
CLAIM_MESSAGES = 120
CLAIMERS = 4
CLAIM_PHONE = "19995550143"  # fictional (555-01xx) and in no seed or test lease


@pytest.fixture()
def queued_for_claims() -> Iterator[tuple[str, set[uuid.UUID]]]:
    """CLAIM_MESSAGES marked queued messages; everyone else's queued messages parked meanwhile
    (claim_outbound_messages hands out any queued message)."""
    with queued_system_messages("pooler-claim", CLAIM_PHONE, CLAIM_MESSAGES) as queued:
        yield queued


def test_concurrent_claimers_through_the_pooler_claim_each_message_once(
    config: Config, bouncer: PgBouncer, queued_for_claims: tuple[str, set[uuid.UUID]]
) -> None:
    """Four claimers (four sender pools) drain the queue through two server connections, each
    holding its claim open a moment so that the others meet locked rows (SKIP LOCKED)."""
    marker, ids = queued_for_claims
    pools = [open_pool(behind(config, bouncer, "zr", db_pool_min=1, db_pool_max=1), f"sender-{i}") for i in range(4)]

    def claim_all(i: int, barrier: threading.Barrier) -> tuple[list[uuid.UUID], set[int]]:
        claimed: list[uuid.UUID] = []
        pids: set[int] = set()
        barrier.wait()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with transaction_as(pools[i]) as conn:
                pids.add(conn.execute("select pg_backend_pid() as pid").fetchone()["pid"])
                rows = conn.execute("select id from public.claim_outbound_messages(%s)", [7]).fetchall()
                if rows:
                    conn.execute("select pg_sleep(0.002)")  # keep the rows locked while others claim
            claimed += [r["id"] for r in rows]
            if rows:
                continue
            with transaction_as(pools[i]) as conn:
                left = conn.execute(
                    "select count(*) as n from public.whatsapp_messages where status = 'queued' and body like %s",
                    [marker + " #%"],
                ).fetchone()["n"]
            if left == 0:
                return claimed, pids
            time.sleep(0.005)
        raise TimeoutError("the queue was not drained in time")

    try:
        results = run_together(CLAIMERS, claim_all)
        clients, servers = pooler_counts(bouncer, "zr")
    finally:
        for pool in pools:
            pool.close()

    ours = Counter(m for claimed, _ in results for m in claimed if m in ids)
    assert {m: n for m, n in ours.items() if n > 1} == {}, "messages were claimed more than once"
    assert set(ours) == ids
    assert sum(1 for claimed, _ in results if any(m in ids for m in claimed)) >= 2, "the claimers did not overlap"
    assert len(set().union(*(pids for _, pids in results))) <= POOLS["zr"] < CLAIMERS <= clients, (clients, servers)


# == c. landlords: no session state leaks between transactions =====================================
VISIBLE = """
select (select auth.uid()) as uid, current_user as role, pg_backend_pid() as pid,
       (select setting::int from pg_settings where name = 'statement_timeout') as statement_timeout_ms,
       array(select c.landlord_id from public.whatsapp_conversations c) as conversation_owners,
       array(select m.landlord_id from public.whatsapp_messages m) as message_owners
"""
BARE = """
select current_user as role, coalesce(current_setting('request.jwt.claims', true), '') as claims,
       (select setting::int from pg_settings where name = 'statement_timeout') as statement_timeout_ms,
       pg_backend_pid() as pid
"""


def as_landlord(pool: Pool, me: Landlord, other: Landlord) -> dict[str, Any]:
    """One landlord transaction through the pool: what it sees, and its RPCs on its own and on the
    other landlord's conversation (P0002 not_found: someone else's is as good as none)."""
    with transaction_as_user(pool, me.claims) as conn:
        seen = conn.execute(VISIBLE).fetchone()
        conn.execute("select public.mark_conversation_read(%s)", [me.conversation_id])
        try:
            with conn.transaction():
                conn.execute("select public.mark_conversation_read(%s)", [other.conversation_id])
            seen["other_rpc"] = "allowed"
        except psycopg.Error as exc:
            seen["other_rpc"] = exc.sqlstate
    return seen


def assert_only_own(seen: dict[str, Any], me: Landlord, timeout_ms: int) -> None:
    assert seen["uid"] == me.id and seen["role"] == "authenticated"
    assert seen["conversation_owners"] == [me.id]
    assert seen["message_owners"] and set(seen["message_owners"]) == {me.id}
    assert seen["other_rpc"] == "P0002"
    assert seen["statement_timeout_ms"] == timeout_ms


@pytest.fixture()
def server_default_timeout_ms() -> int:
    """The timeout a session of postgres gets without options (the server's, or postgres' own)."""
    with psycopg.connect(DATABASE_URL) as conn:
        return int(conn.execute("select setting from pg_settings where name = 'statement_timeout'").fetchone()[0])


def test_landlords_back_to_back_on_one_server_connection_see_only_their_own(
    config: Config, bouncer: PgBouncer, two_landlords: tuple[Landlord, Landlord], server_default_timeout_ms: int
) -> None:
    """Landlord one (worker pool A), a bare client, landlord two (worker pool B), a bare client,
    ... ten times, all on the single server connection of zr_single: each landlord sees only their
    rows; the bare client after each sees role postgres, no claims, the server's own timeout."""
    one, two = two_landlords
    pooled = behind(config, bouncer, "zr_single", db_pool_min=1, db_pool_max=1, db_statement_timeout_ms=4321)
    pools = {one.id: open_pool(pooled, "worker-a"), two.id: open_pool(pooled, "worker-b")}
    pids = set()
    try:
        with raw_client(bouncer, "zr_single", prepare_threshold=None) as bare:
            for _ in range(10):
                for me, other in ((one, two), (two, one)):
                    seen = as_landlord(pools[me.id], me, other)
                    assert_only_own(seen, me, 4321)
                    with bare.transaction():
                        after = bare.execute(BARE).fetchone()
                    assert after["role"] == "postgres" and after["claims"] == ""
                    assert after["statement_timeout_ms"] == server_default_timeout_ms
                    pids |= {seen["pid"], after["pid"]}
    finally:
        for pool in pools.values():
            pool.close()
    assert len(pids) == 1, "the transactions did not share one server connection"


def test_landlords_at_once_through_one_server_connection_see_only_their_own(
    config: Config, bouncer: PgBouncer, two_landlords: tuple[Landlord, Landlord]
) -> None:
    """Eight threads (four per landlord, two worker pools of four client connections) run 10
    landlord transactions each, all queued onto the one server connection of zr_single."""
    one, two = two_landlords
    pooled = behind(config, bouncer, "zr_single", db_pool_min=4, db_pool_max=4)
    pools = [open_pool(pooled, "worker-a"), open_pool(pooled, "worker-b")]

    def work(i: int, barrier: threading.Barrier) -> set[int]:
        me, other = (one, two) if i % 2 == 0 else (two, one)
        barrier.wait()
        pids = set()
        for _ in range(10):
            seen = as_landlord(pools[i // 4], me, other)
            assert_only_own(seen, me, config.db_statement_timeout_ms)
            pids.add(seen["pid"])
        return pids

    try:
        pids = set().union(*run_together(8, work))
        clients, _servers = pooler_counts(bouncer, "zr_single")
    finally:
        for pool in pools:
            pool.close()
    assert len(pids) == 1 and clients >= 8


def test_negative_control_a_session_level_setting_leaks_to_the_next_client(
    bouncer: PgBouncer, two_landlords: tuple[Landlord, Landlord]
) -> None:
    """What the two tests above would catch: claims set for the session (set_config(..., false))
    by one client stay on the server connection, and another client's transaction there runs as
    that landlord. PgBouncer resets nothing between transactions in transaction mode (nor does
    Supavisor); only `set local` / set_config(..., true) are safe."""
    one, _two = two_landlords
    with (
        raw_client(bouncer, "zr_leaky", prepare_threshold=None) as careless,
        raw_client(bouncer, "zr_leaky", prepare_threshold=None) as victim,
    ):
        with careless.transaction():
            careless.execute("select set_config('request.jwt.claims', %s, false)", [json.dumps(one.claims)])
        with victim.transaction():
            victim.execute("set local role authenticated")
            leaked = victim.execute("select (select auth.uid()) as uid").fetchone()["uid"]
    assert leaked == one.id


# == d. static proof: no session state in the database's code or the app's ==========================
SESSION_FUNCTIONS = {
    "pg_advisory_lock",
    "pg_advisory_lock_shared",
    "pg_try_advisory_lock",
    "pg_try_advisory_lock_shared",
    "pg_advisory_unlock",
    "pg_advisory_unlock_shared",
    "pg_advisory_unlock_all",
    "dblink_connect",
    "dblink_connect_u",
}
TRANSACTION_SCOPED_SET = {"TRANSACTION"}  # SET TRANSACTION ...: this transaction only


class _SessionState(Visitor):  # type: ignore[misc]
    """Collects what outlives a transaction: session advisory locks, SET/RESET without LOCAL,
    set_config(..., is_local) not literally true, LISTEN/UNLISTEN, PREPARE/EXECUTE/DEALLOCATE,
    temporary tables without ON COMMIT DROP, WITH HOLD cursors, LOAD."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def visit_FuncCall(self, ancestors: Any, node: sqlast.FuncCall) -> None:
        name = node.funcname[-1].sval.lower()
        if name in SESSION_FUNCTIONS:
            self.found.append(f"{name}() (session-level)")
        elif name == "set_config":
            args = node.args or ()
            is_local = args[2] if len(args) == 3 else None
            literal_true = (
                isinstance(is_local, sqlast.A_Const)
                and isinstance(is_local.val, sqlast.Boolean)
                and is_local.val.boolval is True
            )
            if not literal_true:
                self.found.append("set_config() without is_local = true")

    def visit_VariableSetStmt(self, ancestors: Any, node: sqlast.VariableSetStmt) -> None:
        if not node.is_local and node.name not in TRANSACTION_SCOPED_SET:
            self.found.append(f"SET/RESET without LOCAL ({node.name or 'all'})")

    def visit_ListenStmt(self, ancestors: Any, node: Any) -> None:
        self.found.append("LISTEN")

    def visit_UnlistenStmt(self, ancestors: Any, node: Any) -> None:
        self.found.append("UNLISTEN")

    def visit_PrepareStmt(self, ancestors: Any, node: Any) -> None:
        self.found.append("PREPARE (a named prepared statement)")

    def visit_ExecuteStmt(self, ancestors: Any, node: Any) -> None:
        self.found.append("EXECUTE of a prepared statement")

    def visit_DeallocateStmt(self, ancestors: Any, node: Any) -> None:
        self.found.append("DEALLOCATE")

    def visit_LoadStmt(self, ancestors: Any, node: Any) -> None:
        self.found.append("LOAD")

    def visit_DeclareCursorStmt(self, ancestors: Any, node: sqlast.DeclareCursorStmt) -> None:
        if node.options & enums.CURSOR_OPT_HOLD:
            self.found.append("cursor WITH HOLD")

    def visit_CreateStmt(self, ancestors: Any, node: sqlast.CreateStmt) -> None:
        if node.relation.relpersistence == "t" and node.oncommit != enums.OnCommitAction.ONCOMMIT_DROP:
            self.found.append("temporary table without ON COMMIT DROP")

    def visit_IntoClause(self, ancestors: Any, node: sqlast.IntoClause) -> None:  # CREATE TEMP TABLE AS, SELECT INTO
        if node.rel.relpersistence == "t" and node.onCommit != enums.OnCommitAction.ONCOMMIT_DROP:
            self.found.append("temporary table without ON COMMIT DROP")


def session_state_in_sql(sql: str) -> list[str]:
    """What in this SQL text (one or more statements) outlives its transaction."""
    finder = _SessionState()
    for raw in pglast.parse_sql(sql):
        if raw.stmt is not None:
            finder(raw.stmt)
    return finder.found


def _expression_sql(query: str, mode: int) -> str | None:
    """A plpgsql expression as parsable SQL: statements as they are, expressions and the right
    side of assignments (`v := expr`) after `select`; type names (mode 1) are no SQL."""
    if mode == 0:
        return query
    if mode == 2:
        return "select " + query
    if mode in (3, 4, 5):
        _target, sep, value = query.partition(":=")
        return "select " + (value if sep else query.partition("=")[2])
    return None


def session_state_in_plpgsql(definition: str, body: str = "") -> tuple[list[str], list[str]]:
    """(offences, dynamic SQL not checked) in a plpgsql function: every statement, condition and
    assignment, and EXECUTE of a constant string; EXECUTE of SQL built at run time is listed."""
    found: list[str] = []
    dynamic: list[str] = []
    for stmt, key, line, expr in _expressions(json.loads(parse_plpgsql_json(_parsable(definition, body)))):
        query, mode = expr.get("query", ""), expr.get("parseMode", 0)
        if (stmt in DYNAMIC_STATEMENTS and key == "query") or key == "dynquery":
            text = _constant_string(query)
            if text is None:
                dynamic.append(f"line {line}: EXECUTE {query}")
            else:
                found += [f"line {line}: {f}" for f in session_state_in_sql(text)]
            continue
        sql = _expression_sql(query, mode)
        if sql is not None:
            found += [f"line {line}: {f}" for f in session_state_in_sql(sql)]
    return found, dynamic


VIEWS = """
select n.nspname || '.' || c.relname, pg_get_viewdef(c.oid)
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('v', 'm') and n.nspname = any(%s)
"""
POLICIES = """
select schemaname || '.' || tablename || ' policy ' || policyname, qual, with_check
from pg_policies where schemaname = any(%s)
"""


def session_state_in_database(url: str) -> tuple[int, list[str], list[str]]:
    """(objects checked, offences, dynamic SQL notes) over the migrated database: every function
    in SCHEMAS (as finally defined: pg_proc, after every migration), view and policy."""
    offences: list[str] = []
    notes: list[str] = []
    with psycopg.connect(url) as conn:
        functions = conn.execute(FUNCTIONS, [SCHEMAS]).fetchall()
        views = conn.execute(VIEWS, [SCHEMAS]).fetchall()
        policies = conn.execute(POLICIES, [SCHEMAS]).fetchall()
    for name, language, source, definition in functions:
        try:
            if language == "plpgsql":
                found, dynamic = session_state_in_plpgsql(definition, source)
            elif language == "sql":
                found, dynamic = session_state_in_sql(source if source.strip() else definition), []
            else:
                found, dynamic = [f"language {language} cannot be checked"], []
        except pglast.parser.ParseError as exc:
            found, dynamic = [f"not checked: {exc}"], []
        offences += [f"{name}: {f}" for f in found]
        notes += [f"{name}: {d}" for d in dynamic]
    for name, definition in views:
        offences += [f"{name}: {f}" for f in session_state_in_sql(definition)]
    for name, *expressions in policies:
        for expression in filter(None, expressions):
            offences += [f"{name}: {f}" for f in session_state_in_sql(f"select {expression}")]
    return len(functions) + len(views) + len(policies), offences, notes


# The app's SQL: every string constant (f-strings with each {…} as `x`) that starts like SQL.
_SQL_START = re.compile(
    r"^\s*(select|with|insert|update|delete|set|reset|listen|unlisten|notify|prepare|execute|deallocate|declare"
    r"|create|discard|load|lock|begin|start|commit|call|do|show|alter|drop|truncate)\b",
    re.IGNORECASE,
)
_PLACEHOLDER = re.compile(r"%\(\w+\)[sbt]|%[sbt]")
_SESSION_FUNCTION_TEXT = re.compile(r"\b(" + "|".join(sorted(SESSION_FUNCTIONS)) + r")\s*\(", re.IGNORECASE)


def _strings(tree: ast.AST) -> Iterator[tuple[int, str]]:
    inside_fstrings = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            yield node.lineno, "".join(v.value if isinstance(v, ast.Constant) else "x" for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in inside_fstrings:
            yield node.lineno, node.value


def _is_literal(node: ast.AST | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def session_state_in_python(source: str) -> tuple[int, list[str]]:
    """(SQL statements read, offences) in Python source: its SQL strings as above, any string
    naming a session-level function, and psycopg used for session state (execute(prepare=True),
    prepare_threshold other than None, WITH HOLD server cursors, notifies() of LISTEN)."""
    tree = ast.parse(source)
    statements, found = 0, []
    for line, text in _strings(tree):
        if _SQL_START.match(text):
            try:
                offences = session_state_in_sql(_PLACEHOLDER.sub("$1", text))
                statements += 1
            except pglast.parser.ParseError:
                offences = []  # prose that starts like SQL ("set SUPABASE_URL and ...")
            found += [f"line {line}: {f}" for f in offences]
        found += [f"line {line}: {m.group(1)}() (session-level)" for m in _SESSION_FUNCTION_TEXT.finditer(text)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "prepare" and _is_literal(kw.value, True):
                    found.append(f"line {node.lineno}: execute(prepare=True) (a named prepared statement)")
                elif kw.arg == "prepare_threshold" and not _is_literal(kw.value, None):
                    found.append(f"line {node.lineno}: prepare_threshold other than None")
                elif kw.arg == "withhold" and not _is_literal(kw.value, False):
                    found.append(f"line {node.lineno}: cursor WITH HOLD")
        elif isinstance(node, ast.Attribute) and node.attr == "notifies":
            found.append(f"line {node.lineno}: notifies() (LISTEN)")
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if (
                    isinstance(target, ast.Attribute)
                    and target.attr == "prepare_threshold"
                    and not _is_literal(node.value, None)
                ):
                    found.append(f"line {node.lineno}: prepare_threshold other than None")
    return statements, sorted(found, key=lambda f: int(f.split(":")[0].removeprefix("line ")))


#: Not deployed, never behind the pooler: the local stand-ins (app/local). The Realtime stand-in
#: LISTENs, on its own direct connection, as hosted Realtime has its own.
NOT_DEPLOYED = ("app/local/",)


def deployed_app_files() -> list[Path]:
    return [
        p for p in sorted((ROOT / "app").rglob("*.py")) if not p.relative_to(ROOT).as_posix().startswith(NOT_DEPLOYED)
    ]


def test_no_session_state_in_the_databases_functions_views_and_policies() -> None:
    checked, offences, notes = session_state_in_database(DATABASE_URL)
    assert checked >= 50, f"only {checked} objects found in {SCHEMAS}: is this the migrated database?"
    assert not offences, (
        "session state behind a transaction-mode pooler outlives the transaction and reaches the next "
        "client on that server connection (use pg_advisory_xact_lock, set local, set_config(..., true)):\n  "
        + "\n  ".join(offences)
    )
    # EXECUTE of SQL built at run time cannot be read here (there is none today): read it, then list it here.
    assert notes == [], notes


def test_no_session_state_in_the_deployed_app_code() -> None:
    files = deployed_app_files()
    statements, offences = 0, []
    for path in files:
        n, found = session_state_in_python(path.read_text())
        statements += n
        offences += [f"{path.relative_to(ROOT)} {f}" for f in found]
    assert statements >= 15, f"only {statements} SQL statements found in app/: did the scan break?"
    assert not offences, "\n".join(offences)


@pytest.mark.parametrize(
    ("sql", "flagged"),
    [
        ("select pg_advisory_lock(1)", ["pg_advisory_lock() (session-level)"]),
        ("select pg_try_advisory_lock(hashtext('x'))", ["pg_try_advisory_lock() (session-level)"]),
        ("select pg_advisory_unlock_all()", ["pg_advisory_unlock_all() (session-level)"]),
        ("select pg_advisory_xact_lock(1), pg_try_advisory_xact_lock(2)", []),
        ("select set_config('request.jwt.claims', '{}', false)", ["set_config() without is_local = true"]),
        ("select set_config('request.jwt.claims', $1, $2)", ["set_config() without is_local = true"]),
        ("select set_config('request.jwt.claims', '{}', true)", []),
        ("set statement_timeout = 5", ["SET/RESET without LOCAL (statement_timeout)"]),
        ("set session role authenticated", ["SET/RESET without LOCAL (role)"]),
        ("reset all", ["SET/RESET without LOCAL (all)"]),
        ("set local statement_timeout = 5; set local role service_role", []),
        ("set transaction isolation level serializable", []),
        ("listen zenrent; unlisten *", ["LISTEN", "UNLISTEN"]),
        ("notify zenrent", []),  # delivered at commit: transactional
        (
            "prepare p as select 1; execute p; deallocate p",
            ["PREPARE (a named prepared statement)", "EXECUTE of a prepared statement", "DEALLOCATE"],
        ),
        ("create temp table t (x int)", ["temporary table without ON COMMIT DROP"]),
        ("create temp table t as select 1", ["temporary table without ON COMMIT DROP"]),
        ("select 1 into temp t", ["temporary table without ON COMMIT DROP"]),
        ("create temp table t (x int) on commit drop", []),
        ("declare c cursor with hold for select 1", ["cursor WITH HOLD"]),
        ("declare c cursor for select 1", []),
        ("load 'auto_explain'", ["LOAD"]),
    ],
)
def test_detector_on_sql(sql: str, flagged: list[str]) -> None:
    assert session_state_in_sql(sql) == flagged


def test_detector_on_plpgsql_bodies() -> None:
    body = (
        "\ndeclare\n  s private.whatsapp_settings;\n  ok boolean;\nbegin\n"
        "  ok := pg_try_advisory_lock(42);\n"  # 6: an assignment
        "  if pg_try_advisory_lock(43) then null; end if;\n"  # 7: a condition
        "  perform set_config('role', 'service_role', false);\n"  # 8: PERFORM
        "  set search_path = public;\n"  # 9: a statement
        "  execute 'listen zenrent';\n"  # 10: EXECUTE of a constant
        "  execute format('listen %I', 'x');\n"  # 11: EXECUTE of SQL built at run time: a note
        "  perform pg_advisory_xact_lock(1);\n  set local statement_timeout = 10;\nend\n"
    )
    definition = (
        "CREATE OR REPLACE FUNCTION private.f()\n RETURNS void\n LANGUAGE plpgsql\n"
        f" SET search_path TO ''\nAS $function${body}$function$\n"
    )
    found, dynamic = session_state_in_plpgsql(definition, body)
    assert found == [
        "line 6: pg_try_advisory_lock() (session-level)",
        "line 7: pg_try_advisory_lock() (session-level)",
        "line 8: set_config() without is_local = true",
        "line 9: SET/RESET without LOCAL (search_path)",
        "line 10: LISTEN",
    ]
    assert dynamic == ["line 11: EXECUTE format('listen %I', 'x')"]


def test_detector_on_python() -> None:
    source = """
import psycopg
def f(conn, pool):
    conn.execute("set role service_role")
    conn.execute(f"select set_config('request.jwt.claims', {x}, false)")
    conn.execute("select id from t where x = %s", [1], prepare=True)
    conn.prepare_threshold = 0
    psycopg.connect("", prepare_threshold=5)
    conn.cursor("c", withhold=True)
    for n in conn.notifies():
        pass
    sql = "select " + "pg_advisory_lock(1)"
    conn.execute("set local role service_role; select set_config('a', %s, true)", ["b"])
"""
    statements, found = session_state_in_python(source)
    assert statements == 5
    assert found == [
        "line 4: SET/RESET without LOCAL (role)",
        "line 5: set_config() without is_local = true",
        "line 6: execute(prepare=True) (a named prepared statement)",
        "line 7: prepare_threshold other than None",
        "line 8: prepare_threshold other than None",
        "line 9: cursor WITH HOLD",
        "line 10: notifies() (LISTEN)",
        "line 12: pg_advisory_lock() (session-level)",
    ]


def test_detector_flags_the_realtime_stand_ins_listen() -> None:
    """A real offender, excluded above because it is not deployed: the Realtime stand-in LISTENs
    (on its own direct connection, as hosted Realtime does)."""
    _statements, found = session_state_in_python((ROOT / "app" / "local" / "realtime.py").read_text())
    assert any(f.endswith("LISTEN") for f in found), found


# == e. prepared statements, startup parameters, the statement timeout =============================
def test_the_direct_connection_settings_are_refused_by_pgbouncer(config: Config, bouncer: PgBouncer) -> None:
    """Without ZR_DB_POOLER the pool sends `options=-c statement_timeout=…` at connect: PgBouncer
    (1.18, and later ones unless the parameter is ignored, which drops the timeout) refuses the
    connection. The same settings without it connect."""
    direct = connection_kwargs(replace(config, db_pooler=""))
    assert direct["options"] == f"-c statement_timeout={config.db_statement_timeout_ms}"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(bouncer.url("zr"), **direct).close()
    without_options = {k: v for k, v in direct.items() if k != "options"}
    with psycopg.connect(bouncer.url("zr"), **without_options) as conn:
        assert conn.execute("select 1").fetchone() == {"?column?": 1}


def test_ignoring_the_options_parameter_in_pgbouncer_only_drops_the_timeout(
    config: Config, server_default_timeout_ms: int
) -> None:
    """The PgBouncer setting that makes the direct settings connect (ignore_startup_parameters =
    options) is no fix: the timeout is dropped, silently; the session has the server's default."""
    direct = connection_kwargs(replace(config, db_pooler=""))
    with (
        PgBouncer(DATABASE_URL, {"zr": 1}, settings={"ignore_startup_parameters": "options"}) as lenient,
        psycopg.connect(lenient.url("zr"), **direct) as conn,
    ):
        timeout = conn.execute("select setting::int as ms from pg_settings where name = 'statement_timeout'")
        assert timeout.fetchone()["ms"] == server_default_timeout_ms != config.db_statement_timeout_ms


def test_automatic_prepared_statements_collide_behind_the_pooler(bouncer: PgBouncer) -> None:
    """psycopg's default: a query run a 6th time on a connection is prepared as `_pg3_0` — on the
    server connection, which is shared. Two clients on zr_prepare's one server connection: the
    second one's `_pg3_0` exists already (42P05); on a pool of several, a client's next
    transaction lands on a server without it (26000). And it outlives the client that made it."""
    query = "select %s::int + 1 as n"
    with raw_client(bouncer, "zr_prepare") as first, raw_client(bouncer, "zr_prepare") as second:
        assert first.prepare_threshold == 5  # psycopg's default
        for i in range(6):
            with first.transaction():
                first.execute(query, [i])
        with pytest.raises(psycopg.Error) as raised:
            for i in range(6):
                with second.transaction():
                    second.execute(query, [i])
    assert raised.value.sqlstate == "42P05"
    with raw_client(bouncer, "zr_prepare", prepare_threshold=None) as third, third.transaction():
        left = third.execute("select array_agg(name) as names from pg_prepared_statements").fetchone()["names"]
    assert left == ["_pg3_0"]


def test_with_zr_db_pooler_no_statement_is_prepared(config: Config, bouncer: PgBouncer) -> None:
    """The same through the app's pools with ZR_DB_POOLER=transaction: 20 calls each, alternating
    between two pools on one server connection, never a prepared statement on the server."""
    pooled = behind(config, bouncer, "zr_single", db_pool_min=1, db_pool_max=1)
    pools = [open_pool(pooled, "a"), open_pool(pooled, "b")]
    try:
        for _ in range(20):
            for pool in pools:
                assert call_rpc(pool, "whatsapp_service_status") is not None
                with transaction_as(pool) as conn:
                    prepared = conn.execute("select count(*) as n from pg_prepared_statements").fetchone()["n"]
                assert prepared == 0
    finally:
        for pool in pools:
            pool.close()


def test_the_statement_timeout_applies_per_transaction_and_ends_with_it(
    config: Config, bouncer: PgBouncer, server_default_timeout_ms: int
) -> None:
    """ZR_DB_POOLER=transaction sets the timeout with `set local` in every transaction_as: it
    cancels a slow statement (57014), and the next client on that server connection has the
    server's default again."""
    pool = open_pool(
        behind(config, bouncer, "zr_single", db_pool_min=1, db_pool_max=1, db_statement_timeout_ms=200), "t"
    )
    try:
        with transaction_as(pool) as conn:
            seen = conn.execute(
                "select setting::int as ms, current_user as r from pg_settings where name = 'statement_timeout'"
            ).fetchone()
        assert seen == {"ms": 200, "r": "service_role"}
        with pytest.raises(psycopg.errors.QueryCanceled) as raised, transaction_as(pool) as conn:
            conn.execute("select pg_sleep(5)")
        assert raised.value.sqlstate == "57014"
    finally:
        pool.close()
    with raw_client(bouncer, "zr_single", prepare_threshold=None) as other, other.transaction():
        assert other.execute(BARE).fetchone()["statement_timeout_ms"] == server_default_timeout_ms


def test_zr_db_pooler_configuration() -> None:
    env = {**DEVELOPMENT, "DATABASE_URL": DATABASE_URL}
    assert Config.from_env(env).db_pooler == ""
    behind_pooler = Config.from_env({**env, "ZR_DB_POOLER": "Transaction"})
    assert behind_pooler.db_pooler == POOLER_TRANSACTION
    assert connection_kwargs(behind_pooler) == {
        "autocommit": False,
        "row_factory": dict_row,
        "connect_timeout": 3,
        "prepare_threshold": None,
    }
    # Direct: as before this knob existed.
    assert connection_kwargs(Config.from_env(env)) == {
        "autocommit": False,
        "row_factory": dict_row,
        "connect_timeout": 3,
        "options": "-c statement_timeout=5000",
    }
    assert MediaConfig.from_env({**env, "ZR_DB_POOLER": "transaction"}).pool_config().db_pooler == POOLER_TRANSACTION
    for bad in ("session", "yes", "pgbouncer"):
        with pytest.raises(ConfigError):
            Config.from_env({**env, "ZR_DB_POOLER": bad})
        with pytest.raises(ConfigError):
            MediaConfig.from_env({**env, "ZR_DB_POOLER": bad})

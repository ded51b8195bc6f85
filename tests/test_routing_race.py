"""Concurrent deliveries against the real database: route_inbound_message is idempotent on wamid
even when Meta's retry races the first delivery in another transaction, and two different
messages racing to open the same conversation both land in it.

Each delivery runs in its own connection as service_role, in an open transaction. A barrier
starts both calls together; whichever finishes first keeps its transaction open until a third
connection has seen the other one waiting on a lock, so the two really overlap. These tests
commit, so they create their own landlord, tenant and phone and delete them afterwards.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

LOCK_WAIT_TIMEOUT_S = 10.0


@pytest.fixture()
def landlord_and_phone(config):
    """A committed landlord (opted in) with one tenant on an active lease; removed afterwards."""
    landlord_id = uuid.uuid4()
    # 0740099xxxx: not used by the seed or the pgTAP files; random so reruns never collide.
    phone = f"4474009{random.randint(0, 99999):05d}"
    with psycopg.connect(config.database_url, autocommit=True) as conn:
        conn.execute(
            "insert into auth.users (id, aud, role, email) values (%s, 'authenticated', 'authenticated', %s)",
            [landlord_id, f"race-{landlord_id}@test.zenrent"],
        )
        conn.execute(
            """insert into public.user_profiles (id, full_name, whatsapp_enabled, whatsapp_opted_in_at,
                                                whatsapp_notifications_enabled)
               values (%s, 'Race Landlord', true, now(), false)""",
            [landlord_id],
        )
        property_id = conn.execute(
            "insert into public.properties (user_id, address) values (%s, '1 Race Road') returning id", [landlord_id]
        ).fetchone()[0]
        tenant_id = conn.execute(
            "insert into public.tenants (user_id, name, phone) values (%s, 'Racy Tenant', %s) returning id",
            [landlord_id, "+" + phone],
        ).fetchone()[0]
        conn.execute(
            "insert into public.leases (tenant_id, property_id, status, start_date)"
            " values (%s, %s, 'active', '2025-01-01')",
            [tenant_id, property_id],
        )
    try:
        yield landlord_id, phone
    finally:
        with psycopg.connect(config.database_url, autocommit=True) as conn:
            conn.execute("delete from public.whatsapp_messages where tenant_phone = %s", [phone])
            conn.execute("delete from public.whatsapp_conversations where tenant_phone = %s", [phone])
            conn.execute("delete from private.phone_preferences where phone = %s", [phone])
            conn.execute("delete from auth.users where id = %s", [landlord_id])  # cascades to profile, tenant, lease


def text_message(wamid: str, phone: str, body: str) -> dict:
    return {"from": phone, "id": wamid, "timestamp": str(int(time.time())), "type": "text", "text": {"body": body}}


def deliver_concurrently(database_url: str, messages: list[dict]) -> list[dict]:
    """Route each message in its own service_role transaction, all at once; return the results.

    The first call to finish holds its transaction open until another backend is seen waiting
    on a lock (so the deliveries provably overlap), then every transaction commits.
    """
    barrier = threading.Barrier(len(messages), timeout=LOCK_WAIT_TIMEOUT_S)
    release = threading.Event()
    pids: list[int] = []

    def deliver(message: dict) -> dict:
        with psycopg.connect(database_url) as conn:
            conn.execute("set local role service_role")  # opens the transaction
            pids.append(conn.info.backend_pid)
            barrier.wait()
            result = conn.execute("select public.route_inbound_message(%s)", [Jsonb(message)]).fetchone()[0]
            if not release.wait(LOCK_WAIT_TIMEOUT_S):
                raise AssertionError("the other delivery never waited on this one")
            conn.commit()
            return result

    with ThreadPoolExecutor(max_workers=len(messages)) as pool:
        futures = [pool.submit(deliver, m) for m in messages]
        saw_wait = False
        with psycopg.connect(database_url, autocommit=True) as watcher:
            deadline = time.monotonic() + LOCK_WAIT_TIMEOUT_S
            while time.monotonic() < deadline and not any(f.done() for f in futures):
                waiting = watcher.execute(
                    "select count(*) from pg_locks where not granted and pid = any(%s)", [pids]
                ).fetchone()[0]
                if waiting:
                    saw_wait = True
                    break
                time.sleep(0.01)
        release.set()
        results = [f.result(timeout=LOCK_WAIT_TIMEOUT_S) for f in futures]
    assert saw_wait, "the deliveries did not overlap: no backend waited on the other's transaction"
    return results


def test_racing_redeliveries_of_one_wamid_store_it_once(config, landlord_and_phone):
    landlord_id, phone = landlord_and_phone
    wamid = f"wamid.RACE_{uuid.uuid4().hex}"
    message = text_message(wamid, phone, "Is the boiler fixed?")

    results = deliver_concurrently(config.database_url, [message, message])

    assert sorted(r["duplicate"] for r in results) == [False, True]
    first, second = results
    assert first["message_id"] == second["message_id"]
    assert first["conversation_id"] == second["conversation_id"]
    assert {r["routing_status"] for r in results} == {"delivered"}
    assert {r["landlord_id"] for r in results} == {str(landlord_id)}
    with psycopg.connect(config.database_url, row_factory=dict_row) as conn:
        stored = conn.execute("select count(*) as n from public.whatsapp_messages where wamid = %s", [wamid]).fetchone()
        conversation = conn.execute(
            "select unread_count, last_message_preview from public.whatsapp_conversations "
            "where landlord_id = %s and tenant_phone = %s",
            [landlord_id, phone],
        ).fetchone()
    assert stored["n"] == 1
    assert conversation == {"unread_count": 1, "last_message_preview": "Is the boiler fixed?"}


def test_two_messages_racing_to_open_a_conversation_share_it(config, landlord_and_phone):
    landlord_id, phone = landlord_and_phone
    messages = [text_message(f"wamid.RACE_{uuid.uuid4().hex}", phone, body) for body in ("One", "Two")]

    results = deliver_concurrently(config.database_url, messages)

    assert [r["duplicate"] for r in results] == [False, False]
    assert {r["routing_status"] for r in results} == {"delivered"}
    assert results[0]["conversation_id"] == results[1]["conversation_id"]
    with psycopg.connect(config.database_url, row_factory=dict_row) as conn:
        conversations = conn.execute(
            "select id, unread_count from public.whatsapp_conversations where landlord_id = %s and tenant_phone = %s",
            [landlord_id, phone],
        ).fetchall()
    assert conversations == [{"id": uuid.UUID(results[0]["conversation_id"]), "unread_count": 2}]

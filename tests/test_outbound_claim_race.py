"""Concurrent outbound workers never claim one message twice (issue 5).

About 200 messages are queued directly in public.whatsapp_messages; four worker connections
then drain the queue at the same time, each claim in its own transaction as service_role
(`public.claim_outbound_messages`, FOR UPDATE SKIP LOCKED), holding the claim open for a moment
so that the others run into locked rows. Every message must be handed out exactly once.

claim_outbound_messages hands out any queued message, so queued rows the test did not create
are parked (next_attempt_at = infinity) for its duration and restored afterwards, and the
assertions count only the test's own rows (a run marker in the body, a phone nobody uses).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest

from conftest import DATABASE_URL
from queued import queued_system_messages

N_MESSAGES = 200
N_WORKERS = 4
BATCH_SIZE = 7
PHONE = "19995550142"  # fictional (555-01xx) and in no seed or test lease
DEADLINE_SECONDS = 60


@pytest.fixture()
def queued_messages() -> Iterator[tuple[str, set[uuid.UUID]]]:
    """Queue N_MESSAGES marked messages, park everyone else's; undo both afterwards."""
    with queued_system_messages("claim-race", PHONE, N_MESSAGES) as queued:
        yield queued


def _worker(marker: str, barrier: threading.Barrier, claimed: list[uuid.UUID], errors: list[BaseException]) -> None:
    """Claim until none of the test's messages is left queued."""
    try:
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            barrier.wait(timeout=30)
            deadline = time.monotonic() + DEADLINE_SECONDS
            while time.monotonic() < deadline:
                with conn.transaction():
                    conn.execute("set local role service_role")
                    rows = conn.execute("select id from public.claim_outbound_messages(%s)", (BATCH_SIZE,)).fetchall()
                    if rows:
                        conn.execute("select pg_sleep(0.002)")  # keep the rows locked while others claim
                claimed.extend(row[0] for row in rows)
                if rows:
                    continue
                # Nothing claimable now: finished unless another worker still holds some of ours.
                (left,) = conn.execute(
                    "select count(*) from public.whatsapp_messages where status = 'queued' and body like %s",
                    (marker + " #%",),
                ).fetchone()
                if left == 0:
                    return
                time.sleep(0.005)
            raise TimeoutError("the queue was not drained in time")
    except BaseException as exc:  # noqa: BLE001 - reported by the test, not lost in the thread
        errors.append(exc)


def test_concurrent_workers_claim_every_message_exactly_once(queued_messages, db):
    marker, ids = queued_messages
    barrier = threading.Barrier(N_WORKERS)
    claims: list[list[uuid.UUID]] = [[] for _ in range(N_WORKERS)]
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_worker, args=(marker, barrier, claims[i], errors), name=f"claim-worker-{i}")
        for i in range(N_WORKERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DEADLINE_SECONDS + 30)

    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)

    ours = Counter(message_id for worker in claims for message_id in worker if message_id in ids)
    twice = {message_id: n for message_id, n in ours.items() if n > 1}
    assert twice == {}, f"{len(twice)} messages were claimed more than once"
    assert set(ours) == ids, f"{len(ids - set(ours))} messages were never claimed"
    assert sum(ours.values()) == N_MESSAGES
    busy_workers = sum(1 for worker in claims if any(message_id in ids for message_id in worker))
    assert busy_workers >= 2, "the workers did not actually run concurrently"

    rows = db.execute(
        "select status, attempt_count, count(*) as n from public.whatsapp_messages where body like %s group by 1, 2",
        (marker + " #%",),
    ).fetchall()
    assert rows == [{"status": "sending", "attempt_count": 1, "n": N_MESSAGES}]

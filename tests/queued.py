"""Marked queued outbound messages for the claim tests, with everyone else's queued messages parked
meanwhile (claim_outbound_messages hands out any queued message); both undone afterwards."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import psycopg

from conftest import DATABASE_URL


@contextlib.contextmanager
def queued_system_messages(tag: str, phone: str, count: int) -> Iterator[tuple[str, set[uuid.UUID]]]:
    """`count` queued system texts to `phone` whose bodies start with a fresh marker; yields (marker, ids)."""
    marker = f"{tag} {uuid.uuid4()}"
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        with conn.transaction():
            parked = conn.execute(
                """update public.whatsapp_messages m set next_attempt_at = 'infinity'
                   from (select id, next_attempt_at from public.whatsapp_messages
                         where status = 'queued' for update) old
                   where m.id = old.id
                   returning m.id, old.next_attempt_at"""
            ).fetchall()
            ids = {
                row[0]
                for row in conn.execute(
                    """insert into public.whatsapp_messages (direction, type, body, status, routing_status,
                                                             outbound_kind, tenant_phone, to_phone, is_from_tenant)
                       select 'outgoing', 'text', %s || ' #' || n, 'queued', 'system', 'text', %s, %s, false
                       from generate_series(1, %s) n
                       returning id""",
                    (marker, phone, phone, count),
                ).fetchall()
            }
        try:
            yield marker, ids
        finally:
            with conn.transaction():
                conn.execute("delete from public.whatsapp_messages where body like %s", (marker + " #%",))
                with conn.cursor() as cur:
                    cur.executemany(
                        "update public.whatsapp_messages set next_attempt_at = %s where id = %s",
                        [(next_attempt_at, message_id) for message_id, next_attempt_at in parked],
                    )

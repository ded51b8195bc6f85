"""Worlds: generated data sets in a fresh scratch database (bench/sql/world_*.sql, generate_series)."""

from __future__ import annotations

import concurrent.futures
import json
import logging
import random
import time
from typing import Any

from bench.harness.numbers import human
from bench.harness.paths import SQL
from bench.harness.profile import World
from bench.harness.scratch import Scratch, psql_file

log = logging.getLogger(__name__)

CENTRAL_PHONE_NUMBER_ID = "100000000000001"
CENTRAL_NUMBER = {
    "display_phone_number": "447700000000",
    "phone_number_id": CENTRAL_PHONE_NUMBER_ID,
}  # as Meta sends it
UNKNOWN_PCT = 3  # share of inbound messages from numbers nobody has
MESSAGES_PER_CHUNK = 500_000
LOADERS = 2

SIZES = """
select 'tenants', count(*) from public.tenants union all
select 'landlords', count(*) from public.user_profiles union all
select 'leases', count(*) from public.leases union all
select 'routing_rows', count(*) from private.tenant_landlord_routing union all
select 'conversations', count(*) from public.whatsapp_conversations union all
select 'messages', count(*) from public.whatsapp_messages
"""


def random_sender(rng: random.Random, tenants: int) -> tuple[str, int]:
    """A sender phone and tenant number as route_inbound.sql draws them (see its header)."""
    t = rng.randint(1, tenants)
    if t % 20 == 0 or t % 100 == 2:
        t -= 1
    prefix = "4478" if rng.randint(1, 100) <= UNKNOWN_PCT else "4477"
    return f"{prefix}{t:08d}", t


def routing_defines(world: World, pad: int | None = None) -> dict[str, Any]:
    """pgbench -D variables of the scripts that draw senders (route_inbound.sql and its kin)."""
    defines: dict[str, Any] = {"tenants": world.tenants, "unknown_pct": UNKNOWN_PCT}
    if pad is not None:
        defines["pad"] = pad
    return defines


def build_world(scratch: Scratch, world: World) -> dict[str, Any]:
    """Recreate the scratch database from the migrations and generate `world` in it; returns its sizes."""
    log.info("world %s: %s in database %s", world.name, world.label(), scratch.name)
    started = time.monotonic()
    scratch.create()
    scratch.execute("select public.configure_whatsapp(%s::jsonb)", [json.dumps(CENTRAL_NUMBER)])
    log.info("  database created from platform.sql + migrations")
    psql_file(scratch.url, SQL / "world_base.sql", {"tenants": world.tenants})
    psql_file(scratch.url, SQL / "world_messages_prepare.sql", {"tenants": world.tenants, "messages": world.messages})
    load_messages(scratch, world)
    psql_file(scratch.url, SQL / "world_finish.sql", {"messages": world.messages})
    scratch.checkpoint()
    sizes: dict[str, Any] = dict(scratch.execute(SIZES))
    sizes["messages_table_mb"] = int(
        scratch.scalar("select pg_total_relation_size('public.whatsapp_messages') / 1048576")
    )
    sizes["generation_s"] = round(time.monotonic() - started, 1)
    log.info("  world %s ready in %ss: %s", world.name, sizes["generation_s"], sizes)
    return {"name": world.name, "tenants": world.tenants, "messages": world.messages, "actual": sizes}


def load_messages(scratch: Scratch, world: World) -> None:
    """The messages, in chunks loaded by two psql sessions at once."""
    conversations = int(scratch.scalar("select value from bench.params where name = 'conversations'"))
    ranges = [
        (lo, min(lo + MESSAGES_PER_CHUNK - 1, world.messages))
        for lo in range(1, world.messages + 1, MESSAGES_PER_CHUNK)
    ]
    log.info("  messages: %d chunk(s), %d loaders", len(ranges), LOADERS)

    def load(r: tuple[int, int]) -> int:
        variables = {"lo": r[0], "hi": r[1], "messages": world.messages, "conversations": conversations}
        psql_file(scratch.url, SQL / "world_messages_chunk.sql", variables, quiet=True)
        return r[1] - r[0] + 1

    done = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=LOADERS) as pool:
        for n in pool.map(load, ranges):
            done += n
            log.info("  messages loaded: %s / %s", human(done), human(world.messages))

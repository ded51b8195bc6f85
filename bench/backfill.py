"""Benchmark of the multi-WABA history migration on generated data (default 1,000,000 messages).

In a scratch database on the server of DATABASE_URL (dropped afterwards):

1. the platform bootstrap and the migrations up to the multi-WABA baseline;
2. generated legacy data, all in SQL with generate_series (no per-row Python): landlords
   (rows / 500), tenants (rows / 10) with phones in mixed formats (some shared between two
   landlords, some between two tenants of one landlord), properties, leases (10 % of tenants
   moved, 5 % of leases ended), one WhatsApp account per landlord (connected, disconnected,
   pending; all with token references), and the messages (60 % incoming, 40 % outgoing, 5 % from or
   to numbers that are no tenant, 2 % images, spread over six years);
3. every later migration, timed one by one with the WAL it writes: this is `supabase db push`
   on a project that holds this history (20261125120000 is the archive copy, 20261125120200 phase 3);
4. VACUUM ANALYZE (what autovacuum leaves a live table in), then the backfill to completion, as
   scripts/migrate-history runs it (one transaction per batch, as service_role), once with batches
   of 2,000 and once with batches of 10,000 (on a file copy of the same database);
5. public.multi_waba_migration_report() and public.reconcile_multi_waba_archive(), timed; both
   runs must end reconciled and identical.

    .venv/bin/python bench/backfill.py [--rows N] [--out bench/results/backfill.json]

`run(rows, database_url)` does the same and returns the result as a dict (it writes nothing), for
scripts/bench and the smoke test.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = sorted((ROOT / "supabase" / "migrations").glob("*.sql"))
PLATFORM = ROOT / "supabase" / "local" / "platform.sql"
BASELINE = "20261125090100"
ARCHIVE_MIGRATION = "20261129120050"
PHASE3_MIGRATION = "20261129130000"
DEFAULT_URL = "postgresql://postgres:postgres@127.0.0.1:54322/postgres?sslmode=disable"
DEFAULT_OUT = ROOT / "bench" / "results" / "backfill.json"
BATCH_SIZES = (2000, 10000)
NOTE = ("Measured on a shared development machine (2 vCPUs, other engineers running test suites at the "
        "same time); treat the numbers as a conservative order of magnitude, not a lab result.")

log = logging.getLogger("bench.backfill")


def uuid_sql(kind: str, expr: str) -> str:
    """A deterministic uuid from an integer expression: 00000000-0000-4000-<kind>-<hex>."""
    return f"('00000000-0000-4000-{kind}-' || lpad(to_hex({expr}), 12, '0'))::uuid"


def generate_sql(rows: int) -> tuple[str, dict]:
    landlords = max(4, rows // 500)
    tenants = max(20, rows // 10)
    shape = {"landlords": landlords, "tenants": tenants, "properties": tenants + tenants // 10,
             "messages": rows}
    landlord_of = f"(1 + (t - 1) % {landlords})"
    # Phone digits of tenant t: every 50th shares the previous tenant's phone (another landlord);
    # every 200th (+1) shares the phone of a tenant of the same landlord.
    digits = (f"(case when t % 50 = 0 then 447400000000 + t - 1 "
              f"when t % 200 = 1 and t > {landlords} then 447400000000 + t - {landlords} "
              f"else 447400000000 + t end)::text")

    def typed(d: str, selector: str) -> str:
        """The same number written four ways."""
        return (f"(case {selector} % 4 "
                f"when 0 then '+44 ' || substr({d}, 3, 4) || ' ' || substr({d}, 7) "
                f"when 1 then '0' || substr({d}, 3, 4) || '-' || substr({d}, 7) "
                f"when 2 then '0044 (' || substr({d}, 3, 4) || ') ' || substr({d}, 7, 3) || '.' || substr({d}, 10) "
                f"else {d} end)")

    landlord_number = "('4420' || lpad(l::text, 8, '0'))"
    script = f"""
insert into auth.users (id, aud, role, email)
select {uuid_sql('a000', 'l')}, 'authenticated', 'authenticated', 'landlord' || l || '@bench.test'
from generate_series(1, {landlords}) l;

insert into public.user_profiles (id, full_name, email)
select {uuid_sql('a000', 'l')}, 'Landlord ' || l, 'landlord' || l || '@bench.test'
from generate_series(1, {landlords}) l;

insert into public.properties (id, user_id, address, city)
select {uuid_sql('b000', 'p')}, {uuid_sql('a000', '(1 + ((case when p <= ' + str(tenants) + ' then p else (p - ' + str(tenants) + ') * 10 end) - 1) % ' + str(landlords) + ')')},
       p || ' Bench Street', 'London'
from generate_series(1, {tenants + tenants // 10}) p;

insert into public.tenants (id, user_id, name, phone)
select {uuid_sql('c000', 't')}, {uuid_sql('a000', landlord_of)}, 'Tenant ' || t, {typed(digits, 't')}
from generate_series(1, {tenants}) t;

-- Every tenant rents property t; every 10th moved there from property tenants + t/10; 5 % ended.
insert into public.leases (tenant_id, property_id, status, start_date, end_date)
select {uuid_sql('c000', 't')}, {uuid_sql('b000', 't')},
       case when t % 20 = 5 then 'ended' else 'active' end,
       case when t % 10 = 0 then date '2022-01-01' + t % 700 else date '2020-06-01' + t % 1000 end,
       case when t % 20 = 5 then date '2020-06-01' + t % 1000 + 700 end
from generate_series(1, {tenants}) t;
insert into public.leases (tenant_id, property_id, status, start_date, end_date)
select {uuid_sql('c000', 't')}, {uuid_sql('b000', f'{tenants} + t / 10')}, 'ended',
       date '2019-01-01' + t % 300, date '2022-01-01' + t % 700 - 1
from generate_series(10, {tenants}, 10) t;

insert into public.whatsapp_accounts (user_id, waba_id, phone_number_id, display_phone_number, status,
                                      access_token_ref, connected_at)
select {uuid_sql('a000', 'l')}, '1022' || lpad(l::text, 11, '0'), '1065' || lpad(l::text, 11, '0'),
       '+' || {landlord_number},
       case when l % 10 = 0 then 'disconnected' when l % 25 = 1 then 'pending' else 'connected' end,
       'vault:waba/' || l, timestamptz '2023-01-01' + l * interval '1 hour'
from generate_series(1, {landlords}) l;

-- Messages: tenant t of landlord l; h, a hash of m, picks (independently of t) the 5 % with a
-- number that is no tenant, the 60 % incoming, the 2 % images and the way the number is written.
insert into public.whatsapp_messages (user_id, waba_id, wamid, from_phone, to_phone, direction, type, body, status,
                                      sent_at, created_at, updated_at)
select {uuid_sql('a000', 'l')}, '1022' || lpad(l::text, 11, '0'), 'wamid.BENCH' || m,
       case when incoming then phone else {landlord_number} end,
       case when incoming then {landlord_number} else phone end,
       case when incoming then 'incoming' else 'outgoing' end,
       case when image then 'image' else 'text' end,
       case when image then null else 'Message ' || m || ' about the flat, the rent, the boiler or the keys' end,
       case when incoming then 'read' else 'delivered' end,
       at, at, at
from (
  select m, t, {landlord_of} as l, (h / 20) % 5 < 3 as incoming, (h / 100) % 50 = 0 as image,
         case when h % 20 = 0 then (447999000000 + m)::text else {typed(digits, '(h / 5000)')} end as phone,
         timestamptz '2020-01-01' + ((m * 104729) % 189216000) * interval '1 second' as at
  from (select m, 1 + (m * 7919) % {tenants} as t, abs(hashint8(m)::bigint) as h
        from generate_series(1::bigint, {rows}) m) x
) g;
"""
    return script, shape


# --- plumbing --------------------------------------------------------------------------------


def url_of(database_url: str, dbname: str) -> str:
    return make_conninfo(database_url, dbname=dbname)


def admin_url_of(database_url: str, dbname: str) -> str:
    """The platform's superuser on that database: only for supabase/local/platform.sql and CHECKPOINT."""
    admin = os.environ.get("ZR_DB_ADMIN_URL") or make_conninfo(database_url, user="supabase_admin", password="postgres")
    return make_conninfo(admin, dbname=dbname)


def checkpoint(url: str) -> None:
    """Benchmark hygiene, not project behaviour: CHECKPOINT needs a superuser (or pg_checkpoint),
    which postgres is not, as on hosted; done as the platform's superuser, like the bootstrap."""
    with psycopg.connect(admin_url_of(url, conninfo_to_dict(url)["dbname"]), autocommit=True) as conn:
        conn.execute("checkpoint")


def run_file(url: str, path: Path) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("set client_min_messages = warning")
        conn.execute(path.read_text())


def wal_lsn(conn: psycopg.Connection) -> str:
    return conn.execute("select pg_current_wal_lsn()::text").fetchone()[0]


def wal_since(conn: psycopg.Connection, start: str) -> int:
    return int(conn.execute("select pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)", (start,)).fetchone()[0])


def wal_stats(conn: psycopg.Connection) -> dict:
    """Cluster-wide WAL and checkpoint counters (pg_stat_wal, pg_stat_bgwriter)."""
    row = conn.execute(
        "select w.wal_records, w.wal_fpi, w.wal_bytes, b.checkpoints_timed + b.checkpoints_req"
        " from pg_stat_wal w, pg_stat_bgwriter b").fetchone()
    return {"records": int(row[0]), "fpi": int(row[1]), "bytes": int(row[2]), "checkpoints": int(row[3])}


def per_million(seconds: float, rows: int) -> float:
    return round(seconds * 1_000_000 / max(rows, 1), 2)


def machine(conn: psycopg.Connection) -> dict:
    mem_kb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    settings = dict(conn.execute(
        "select name, current_setting(name) from pg_settings where name in ('shared_buffers', 'work_mem',"
        " 'maintenance_work_mem', 'max_wal_size', 'synchronous_commit', 'wal_level', 'checkpoint_timeout',"
        " 'effective_io_concurrency')").fetchall())
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1) if mem_kb else None,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "postgres": conn.execute("select version()").fetchone()[0],
        "settings": settings,
    }


def state_digest(url: str) -> dict:
    """Everything the backfill decided, as order-independent sums (conversation ids differ between
    databases, so conversations are named by landlord and phone)."""
    with psycopg.connect(url) as conn:
        m = conn.execute(
            """select count(*), sum(hashtextextended((m.id, m.landlord_id, m.tenant_id, m.property_id, cv.landlord_id,
                      cv.tenant_phone, m.tenant_phone, m.is_from_tenant, m.outbound_kind, m.routing_status,
                      d.routing_metadata, m.updated_at)::text, 0)::numeric)::text
               from public.whatsapp_messages m left join public.whatsapp_conversations cv on cv.id = m.conversation_id
               left join private.whatsapp_message_details d on d.message_id = m.id
               where m.user_id is not null""").fetchone()
        c = conn.execute(
            """select count(*), sum(hashtextextended((c.landlord_id, c.tenant_phone, c.tenant_id, c.property_id, c.status,
                      c.unread_count, c.last_message_at, c.last_inbound_at, c.last_message_preview)::text, 0)::numeric)::text
               from public.whatsapp_conversations c""").fetchone()
    return {"messages": m[0], "messages_sum": m[1], "conversations": c[0], "conversations_sum": c[1]}


def backfill(url: str, batch_size: int) -> dict:
    """File everything, one transaction per batch as service_role (what scripts/migrate-history does)."""
    durations: list[float] = []
    totals = {"seen": 0, "matched": 0, "unmatched": 0, "ambiguous": 0, "conversations_created": 0, "archived": 0}
    with psycopg.connect(url) as conn:
        checkpoint(url)
        start_lsn = wal_lsn(conn)
        start_stats = wal_stats(conn)
        conn.commit()
        started = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            with conn.transaction():
                conn.execute("set local role service_role")
                result = conn.execute("select public.backfill_multi_waba_history(%s)", (batch_size,)).fetchone()[0]
            durations.append(time.perf_counter() - t0)
            for key in totals:
                totals[key] += result[key]
            if result["seen"] == 0 or result["remaining"] == 0:
                break
        seconds = time.perf_counter() - started
        wal = wal_since(conn, start_lsn)
        conn.execute("select pg_stat_force_next_flush()")
        conn.commit()
    time.sleep(1.1)   # backends report their WAL counters when idle
    with psycopg.connect(url) as conn:
        end_stats = wal_stats(conn)
    delta = {k: end_stats[k] - start_stats[k] for k in start_stats}
    rows = totals["seen"]
    ordered = sorted(durations)
    return {
        "batch_size": batch_size,
        "batches": len(durations),
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_second": round(rows / seconds),
        "seconds_per_million_rows": per_million(seconds, rows),
        "batch_ms": {"median": round(statistics.median(ordered) * 1000, 1),
                     "p95": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000, 1),
                     "max": round(ordered[-1] * 1000, 1)},
        "wal_bytes": wal,
        "wal_bytes_per_row": round(wal / max(rows, 1)),
        # full-page images: the first change to a page after a checkpoint logs the whole 8 kB page
        "wal_full_page_images": delta["fpi"],
        "wal_full_page_images_per_row": round(delta["fpi"] / max(rows, 1), 2),
        "checkpoints_during_run": delta["checkpoints"],
        "counts": totals,
    }


def timed_call(url: str, query: str) -> tuple[float, list]:
    with psycopg.connect(url) as conn:
        conn.execute("set role service_role")
        t0 = time.perf_counter()
        rows = conn.execute(query).fetchall()
        return time.perf_counter() - t0, rows


# --- the benchmark ---------------------------------------------------------------------------


def run(rows: int = 1_000_000, database_url: str | None = None, batch_sizes: tuple[int, ...] = BATCH_SIZES) -> dict:
    """Run the benchmark in scratch databases on the server of database_url; return the results."""
    database_url = database_url or os.environ.get("DATABASE_URL", DEFAULT_URL)
    prefix = f"zr_bench_{uuid.uuid4().hex[:10]}"
    names = [f"{prefix}_b{size}" for size in batch_sizes]
    base = names[0]
    created: list[str] = []
    result: dict = {"benchmark": "multi-WABA history migration (archive, backfill, phase 3)",
                    "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "note": NOTE,
                    "server": {k: v for k, v in conninfo_to_dict(database_url).items() if k in ("host", "port")}}
    admin = psycopg.connect(database_url, autocommit=True)
    try:
        result["machine"] = machine(admin)
        admin.execute(sql.SQL("create database {} template template0").format(sql.Identifier(base)))
        created.append(base)
        url = url_of(database_url, base)
        run_file(admin_url_of(database_url, base), PLATFORM)
        for path in MIGRATIONS:
            if path.name.split("_", 1)[0] <= BASELINE:
                run_file(url, path)

        script, shape = generate_sql(rows)
        log.info("generating %s messages", f"{rows:,}")
        with psycopg.connect(url) as conn:
            t0 = time.perf_counter()
            conn.execute(script)
            conn.commit()
            result["generate_seconds"] = round(time.perf_counter() - t0, 2)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("vacuum analyze")
            shape["leases"] = conn.execute("select count(*) from public.leases").fetchone()[0]
            shape["incoming"] = conn.execute(
                "select count(*) from public.whatsapp_messages where direction = 'incoming'").fetchone()[0]
            shape["outgoing"] = rows - shape["incoming"]
            shape["accounts_by_status"] = dict(conn.execute(
                "select status, count(*) from public.whatsapp_accounts group by 1 order by 1").fetchall())
            shape["table_mb_before"] = round(conn.execute(
                "select pg_total_relation_size('public.whatsapp_messages')").fetchone()[0] / 2**20)
        result["data"] = shape

        log.info("applying migrations over the history")
        migrations = []
        with psycopg.connect(url, autocommit=True) as conn:
            for path in MIGRATIONS:
                if path.name.split("_", 1)[0] <= BASELINE:
                    continue
                start = wal_lsn(conn)
                t0 = time.perf_counter()
                run_file(url, path)
                seconds = time.perf_counter() - t0
                migrations.append({"migration": path.name, "seconds": round(seconds, 3),
                                   "seconds_per_million_rows": per_million(seconds, rows),
                                   "wal_bytes": wal_since(conn, start)})
        result["migrations"] = migrations
        by_version = {m["migration"].split("_", 1)[0]: m for m in migrations}
        result["archive_copy"] = {**by_version[ARCHIVE_MIGRATION], "rows": rows,
                                  "rows_per_second": round(rows / max(by_version[ARCHIVE_MIGRATION]["seconds"], 1e-9))}
        result["phase3"] = by_version[PHASE3_MIGRATION]
        result["db_push_total_seconds"] = round(sum(m["seconds"] for m in migrations), 2)

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("vacuum analyze")
        for name in names[1:]:   # identical starting points for the other batch sizes
            admin.execute(sql.SQL("create database {} template {} strategy file_copy").format(
                sql.Identifier(name), sql.Identifier(base)))
            created.append(name)

        runs = {}
        digests = {}
        for name, size in zip(names, batch_sizes):
            log.info("backfill, batches of %s", size)
            target = url_of(database_url, name)
            runs[str(size)] = backfill(target, size)
            digests[size] = state_digest(target)
        result["backfill"] = runs

        seconds, report = timed_call(url, "select public.multi_waba_migration_report()")
        result["report"] = {"seconds": round(seconds, 3), "seconds_per_million_rows": per_million(seconds, rows),
                            "result": report[0][0]}
        seconds, rec = timed_call(url, "select landlord_id, matches from public.reconcile_multi_waba_archive()")
        result["reconcile"] = {"seconds": round(seconds, 3), "seconds_per_million_rows": per_million(seconds, rows),
                               "landlords": len(rec), "all_match": all(r[1] for r in rec)}
        result["results_identical_across_batch_sizes"] = len({json.dumps(d, sort_keys=True)
                                                               for d in digests.values()}) == 1
        with psycopg.connect(url) as conn:
            result["data"]["table_mb_after"] = round(conn.execute(
                "select pg_total_relation_size('public.whatsapp_messages')").fetchone()[0] / 2**20)
            result["data"]["archive_mb"] = round(conn.execute(
                "select pg_total_relation_size('archive.multi_waba_messages')").fetchone()[0] / 2**20)
        result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        return result
    finally:
        for name in reversed(created):
            admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        admin.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="messages to generate (default 1,000,000)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"where to write the JSON (default {DEFAULT_OUT.relative_to(ROOT)} for >= 1M rows, "
                             "else stdout only)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    result = run(args.rows)
    text = json.dumps(result, indent=2) + "\n"
    out = args.out or (DEFAULT_OUT if args.rows >= 1_000_000 else None)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        log.info("wrote %s", out)
    sys.stdout.write(text)
    ok = result["reconcile"]["all_match"] and result["results_identical_across_batch_sizes"] \
        and result["report"]["result"]["pending"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

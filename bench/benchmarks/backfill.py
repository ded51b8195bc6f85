"""7. Backfill: the multi-WABA history migration on generated data (full run: 1,000,000 messages).

In scratch databases of their own (<database>_b<batch size>, dropped afterwards):

1. the platform bootstrap and the migrations up to the multi-WABA baseline
   (*_create_multi_waba_baseline.sql);
2. generated legacy data, all in SQL with generate_series (no per-row Python): landlords
   (rows / 500), tenants (rows / 10) with phones in mixed formats (some shared between two
   landlords, some between two tenants of one landlord), properties, leases (10 % of tenants
   moved, 5 % of leases ended), one WhatsApp account per landlord (connected, disconnected,
   pending; all with token references), and the messages (60 % incoming, 40 % outgoing, 5 % from or
   to numbers that are no tenant, 2 % images, spread over six years);
3. every later migration, timed one by one with the WAL it writes: this is `supabase db push` on a
   project that holds this history (found by name: the archive copy is
   *_copy_multi_waba_history_to_archive.sql, or *_create_multi_waba_archive.sql before that had its
   own migration; phase 3 is *_retire_multi_waba_accounts.sql);
4. VACUUM ANALYZE (what autovacuum leaves a live table in), then the backfill to completion, as
   scripts/migrate-history runs it (one transaction per batch, as service_role), once per batch
   size (2,000 and 10,000), each on a file copy of the same database;
5. public.multi_waba_migration_report() and public.reconcile_multi_waba_archive(), timed; every
   run must end reconciled and identical.

scripts/bench runs it with --only backfill and --quick (the default full run shows the JSON already
there); bench/backfill.py runs it alone at any size.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
from psycopg.conninfo import conninfo_to_dict

from bench.harness.benchmark import Benchmark, Context
from bench.harness.numbers import percentile
from bench.harness.paths import MIGRATIONS
from bench.harness.report import fmt, table
from bench.harness.results import Result, loadavg, machine, now
from bench.harness.scratch import Scratch, checkpoint, with_database

log = logging.getLogger(__name__)

BATCH_SIZES = (2000, 10000)
NOTE = (
    "Measured on a shared development machine (2 vCPUs, other engineers running test suites at the "
    "same time); treat the numbers as a conservative order of magnitude, not a lab result."
)
# Migrations by the concern in their name, the first name found winning (the set is being rewritten).
BASELINE = ("_create_multi_waba_baseline.sql",)
ARCHIVE_COPY = ("_copy_multi_waba_history_to_archive.sql", "_create_multi_waba_archive.sql")
PHASE3 = ("_retire_multi_waba_accounts.sql",)


class HistoryMigrations(NamedTuple):
    before: list[Path]  # up to and including the baseline: the schema the history was written in
    after: list[Path]  # what `supabase db push` applies over the history
    archive_copy: Path
    phase3: Path


def find(files: list[Path], suffixes: tuple[str, ...]) -> Path:
    """The one migration whose name ends with the first of `suffixes` that any name ends with."""
    for suffix in suffixes:
        found = [f for f in files if f.name.endswith(suffix)]
        if len(found) > 1:
            raise SystemExit(f"more than one migration named *{suffix}: {', '.join(f.name for f in found)}")
        if found:
            return found[0]
    where = files[0].parent if files else MIGRATIONS
    raise SystemExit(f"no migration named {' or '.join('*' + s for s in suffixes)} in {where}")


def history_migrations(directory: Path = MIGRATIONS) -> HistoryMigrations:
    files = sorted(directory.glob("*.sql"))
    cut = files.index(find(files, BASELINE)) + 1
    return HistoryMigrations(files[:cut], files[cut:], find(files, ARCHIVE_COPY), find(files, PHASE3))


def uuid_sql(kind: str, expr: str) -> str:
    """A deterministic uuid from an integer expression: 00000000-0000-4000-<kind>-<hex>."""
    return f"('00000000-0000-4000-{kind}-' || lpad(to_hex({expr}), 12, '0'))::uuid"


def generate_sql(rows: int) -> tuple[str, dict[str, Any]]:
    landlords = max(4, rows // 500)
    tenants = max(20, rows // 10)
    shape: dict[str, Any] = {
        "landlords": landlords,
        "tenants": tenants,
        "properties": tenants + tenants // 10,
        "messages": rows,
    }
    landlord_of = f"(1 + (t - 1) % {landlords})"
    # Phone digits of tenant t: every 50th shares the previous tenant's phone (another landlord);
    # every 200th (+1) shares the phone of a tenant of the same landlord.
    digits = (
        f"(case when t % 50 = 0 then 447400000000 + t - 1 "
        f"when t % 200 = 1 and t > {landlords} then 447400000000 + t - {landlords} "
        f"else 447400000000 + t end)::text"
    )

    def typed(d: str, selector: str) -> str:
        """The same number written four ways."""
        return (
            f"(case {selector} % 4 "
            f"when 0 then '+44 ' || substr({d}, 3, 4) || ' ' || substr({d}, 7) "
            f"when 1 then '0' || substr({d}, 3, 4) || '-' || substr({d}, 7) "
            f"when 2 then '0044 (' || substr({d}, 3, 4) || ') ' || substr({d}, 7, 3) || '.' || substr({d}, 10) "
            f"else {d} end)"
        )

    landlord_number = "('4420' || lpad(l::text, 8, '0'))"
    property_owner = f"(1 + ((case when p <= {tenants} then p else (p - {tenants}) * 10 end) - 1) % {landlords})"
    script = f"""
insert into auth.users (id, aud, role, email)
select {uuid_sql("a000", "l")}, 'authenticated', 'authenticated', 'landlord' || l || '@bench.test'
from generate_series(1, {landlords}) l;

insert into public.user_profiles (id, full_name, email)
select {uuid_sql("a000", "l")}, 'Landlord ' || l, 'landlord' || l || '@bench.test'
from generate_series(1, {landlords}) l;

insert into public.properties (id, user_id, address, city)
select {uuid_sql("b000", "p")}, {uuid_sql("a000", property_owner)},
       p || ' Bench Street', 'London'
from generate_series(1, {tenants + tenants // 10}) p;

insert into public.tenants (id, user_id, name, phone)
select {uuid_sql("c000", "t")}, {uuid_sql("a000", landlord_of)}, 'Tenant ' || t, {typed(digits, "t")}
from generate_series(1, {tenants}) t;

-- Every tenant rents property t; every 10th moved there from property tenants + t/10; 5 % ended.
insert into public.leases (tenant_id, property_id, status, start_date, end_date)
select {uuid_sql("c000", "t")}, {uuid_sql("b000", "t")},
       case when t % 20 = 5 then 'ended' else 'active' end,
       case when t % 10 = 0 then date '2022-01-01' + t % 700 else date '2020-06-01' + t % 1000 end,
       case when t % 20 = 5 then date '2020-06-01' + t % 1000 + 700 end
from generate_series(1, {tenants}) t;
insert into public.leases (tenant_id, property_id, status, start_date, end_date)
select {uuid_sql("c000", "t")}, {uuid_sql("b000", f"{tenants} + t / 10")}, 'ended',
       date '2019-01-01' + t % 300, date '2022-01-01' + t % 700 - 1
from generate_series(10, {tenants}, 10) t;

insert into public.whatsapp_accounts (user_id, waba_id, phone_number_id, display_phone_number, status,
                                      access_token_ref, connected_at)
select {uuid_sql("a000", "l")}, '1022' || lpad(l::text, 11, '0'), '1065' || lpad(l::text, 11, '0'),
       '+' || {landlord_number},
       case when l % 10 = 0 then 'disconnected' when l % 25 = 1 then 'pending' else 'connected' end,
       'vault:waba/' || l, timestamptz '2023-01-01' + l * interval '1 hour'
from generate_series(1, {landlords}) l;

-- Messages: tenant t of landlord l; h, a hash of m, picks (independently of t) the 5 % with a
-- number that is no tenant, the 60 % incoming, the 2 % images and the way the number is written.
insert into public.whatsapp_messages (user_id, waba_id, wamid, from_phone, to_phone, direction, type, body, status,
                                      sent_at, created_at, updated_at)
select {uuid_sql("a000", "l")}, '1022' || lpad(l::text, 11, '0'), 'wamid.BENCH' || m,
       case when incoming then phone else {landlord_number} end,
       case when incoming then {landlord_number} else phone end,
       case when incoming then 'incoming' else 'outgoing' end,
       case when image then 'image' else 'text' end,
       case when image then null else 'Message ' || m || ' about the flat, the rent, the boiler or the keys' end,
       case when incoming then 'read' else 'delivered' end,
       at, at, at
from (
  select m, t, {landlord_of} as l, (h / 20) % 5 < 3 as incoming, (h / 100) % 50 = 0 as image,
         case when h % 20 = 0 then (447999000000 + m)::text else {typed(digits, "(h / 5000)")} end as phone,
         timestamptz '2020-01-01' + ((m * 104729) % 189216000) * interval '1 second' as at
  from (select m, 1 + (m * 7919) % {tenants} as t, abs(hashint8(m)::bigint) as h
        from generate_series(1::bigint, {rows}) m) x
) g;
"""
    return script, shape


# --- measurements ----------------------------------------------------------------------------


def wal_lsn(conn: psycopg.Connection[Any]) -> str:
    return str(one(conn, "select pg_current_wal_lsn()::text"))


def wal_since(conn: psycopg.Connection[Any], start: str) -> int:
    return int(one(conn, "select pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)", (start,)))


def one(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] | None = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def wal_stats(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Cluster-wide WAL and checkpoint counters (pg_stat_wal, pg_stat_bgwriter)."""
    row = conn.execute(
        "select w.wal_records, w.wal_fpi, w.wal_bytes, b.checkpoints_timed + b.checkpoints_req"
        " from pg_stat_wal w, pg_stat_bgwriter b"
    ).fetchone()
    assert row is not None
    return {"records": int(row[0]), "fpi": int(row[1]), "bytes": int(row[2]), "checkpoints": int(row[3])}


def per_million(seconds: float, rows: int) -> float:
    return round(seconds * 1_000_000 / max(rows, 1), 2)


def table_mb(conn: psycopg.Connection[Any], name: str) -> int:
    return round(int(one(conn, "select pg_total_relation_size(%s::regclass)", (name,))) / 2**20)


def state_digest(url: str) -> dict[str, Any]:
    """Everything the backfill decided, as order-independent sums (conversation ids differ between
    databases, so conversations are named by landlord and phone)."""
    with psycopg.connect(url) as conn:
        m = conn.execute(
            """select count(*), sum(hashtextextended((m.id, m.landlord_id, m.tenant_id, m.property_id, cv.landlord_id,
                      cv.tenant_phone, m.tenant_phone, m.is_from_tenant, m.outbound_kind, m.routing_status,
                      d.routing_metadata, m.updated_at)::text, 0)::numeric)::text
               from public.whatsapp_messages m left join public.whatsapp_conversations cv on cv.id = m.conversation_id
               left join private.whatsapp_message_details d on d.message_id = m.id
               where m.user_id is not null"""
        ).fetchone()
        c = conn.execute(
            """select count(*), sum(hashtextextended((c.landlord_id, c.tenant_phone, c.tenant_id, c.property_id,
                      c.status, c.unread_count, c.last_message_at, c.last_inbound_at,
                      c.last_message_preview)::text, 0)::numeric)::text
               from public.whatsapp_conversations c"""
        ).fetchone()
    assert m is not None and c is not None
    return {"messages": m[0], "messages_sum": m[1], "conversations": c[0], "conversations_sum": c[1]}


def backfill(url: str, batch_size: int) -> Result:
    """File everything, one transaction per batch as service_role (what scripts/migrate-history does)."""
    durations: list[float] = []
    totals = {"seen": 0, "matched": 0, "unmatched": 0, "ambiguous": 0, "conversations_created": 0, "archived": 0}
    checkpoint(url)
    with psycopg.connect(url, autocommit=True) as conn:
        start_lsn, start_stats = wal_lsn(conn), wal_stats(conn)
        started = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            with conn.transaction():
                conn.execute("set local role service_role")
                result = one(conn, "select public.backfill_multi_waba_history(%s)", (batch_size,))
            durations.append(time.perf_counter() - t0)
            for key in totals:
                totals[key] += result[key]
            if result["seen"] == 0 or result["remaining"] == 0:
                break
        seconds = time.perf_counter() - started
        wal = wal_since(conn, start_lsn)
        conn.execute("select pg_stat_force_next_flush()")
    time.sleep(1.1)  # backends report their WAL counters when idle
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
        "batch_ms": {
            "median": round(statistics.median(ordered) * 1000, 1),
            "p95": round((percentile(ordered, 95) or 0) * 1000, 1),
            "max": round(ordered[-1] * 1000, 1),
        },
        "wal_bytes": wal,
        "wal_bytes_per_row": round(wal / max(rows, 1)),
        # full-page images: the first change to a page after a checkpoint logs the whole 8 kB page
        "wal_full_page_images": delta["fpi"],
        "wal_full_page_images_per_row": round(delta["fpi"] / max(rows, 1), 2),
        "checkpoints_during_run": delta["checkpoints"],
        "counts": totals,
    }


def timed_call(url: str, query: str, rows: int) -> tuple[Result, list[tuple[Any, ...]]]:
    """A call as service_role: its seconds (also per million rows) and what it returned."""
    with psycopg.connect(url) as conn:
        conn.execute("set role service_role")
        t0 = time.perf_counter()
        out = conn.execute(query).fetchall()
        seconds = time.perf_counter() - t0
    return {"seconds": round(seconds, 3), "seconds_per_million_rows": per_million(seconds, rows)}, out


def generate_history(base: Scratch, migrations: HistoryMigrations, rows: int) -> Result:
    """The baseline schema and the generated history in it; what was generated."""
    base.create_platform()
    for path in migrations.before:
        base.apply(path)
    script, shape = generate_sql(rows)
    log.info("    generating %s messages", f"{rows:,}")
    with psycopg.connect(base.url) as conn:
        t0 = time.perf_counter()
        conn.execute(script)
        conn.commit()
        generate_seconds = round(time.perf_counter() - t0, 2)
    with psycopg.connect(base.url, autocommit=True) as conn:
        conn.execute("vacuum analyze")
        shape["leases"] = one(conn, "select count(*) from public.leases")
        shape["incoming"] = one(conn, "select count(*) from public.whatsapp_messages where direction = 'incoming'")
        shape["outgoing"] = rows - shape["incoming"]
        by_status = "select status, count(*) from public.whatsapp_accounts group by 1 order by 1"
        shape["accounts_by_status"] = dict(conn.execute(by_status).fetchall())
        shape["table_mb_before"] = table_mb(conn, "public.whatsapp_messages")
    return {"generate_seconds": generate_seconds, "data": shape}


def push_migrations(base: Scratch, migrations: HistoryMigrations, rows: int) -> Result:
    """Every later migration over the history, timed one by one with its WAL."""
    log.info("    applying migrations over the history")
    timed: list[Result] = []
    with psycopg.connect(base.url, autocommit=True) as conn:
        for path in migrations.after:
            start = wal_lsn(conn)
            t0 = time.perf_counter()
            base.apply(path)
            seconds = time.perf_counter() - t0
            timed.append(
                {
                    "migration": path.name,
                    "seconds": round(seconds, 3),
                    "seconds_per_million_rows": per_million(seconds, rows),
                    "wal_bytes": wal_since(conn, start),
                }
            )
        conn.execute("vacuum analyze")
    by_name = {m["migration"]: m for m in timed}
    copy = by_name[migrations.archive_copy.name]
    return {
        "migrations": timed,
        "archive_copy": copy | {"rows": rows, "rows_per_second": round(rows / max(copy["seconds"], 1e-9))},
        "phase3": by_name[migrations.phase3.name],
        "db_push_total_seconds": round(sum(m["seconds"] for m in timed), 2),
    }


def measure_history(server: str, rows: int, prefix: str, batch_sizes: tuple[int, ...] = BATCH_SIZES) -> Result:
    """The whole benchmark in scratch databases <prefix>_b<size> on `server`, dropped afterwards."""
    migrations = history_migrations()
    base = Scratch(server, f"{prefix}_b{batch_sizes[0]}")
    result: Result = {
        "benchmark": "multi-WABA history migration (archive, backfill, phase 3)",
        "measured_at": now(),
        "note": NOTE,
        "server": {k: v for k, v in conninfo_to_dict(server).items() if k in ("host", "port")},
        "machine": machine(base.admin_url) | {"loadavg_at_start": loadavg()},
    }
    copies = [base]
    try:
        result |= generate_history(base, migrations, rows)
        result |= push_migrations(base, migrations, rows)
        copies += [base.clone(f"{prefix}_b{size}") for size in batch_sizes[1:]]  # identical starting points
        runs, digests = {}, set()
        for scratch, size in zip(copies, batch_sizes, strict=True):
            log.info("    backfill, batches of %s", size)
            runs[str(size)] = backfill(scratch.url, size)
            digests.add(json.dumps(state_digest(scratch.url), sort_keys=True))
        result["backfill"] = runs
        result |= reports(base, rows)
        result["results_identical_across_batch_sizes"] = len(digests) == 1
        with psycopg.connect(base.url) as conn:
            result["data"]["table_mb_after"] = table_mb(conn, "public.whatsapp_messages")
            result["data"]["archive_mb"] = table_mb(conn, "archive.multi_waba_messages")
        result["machine"]["loadavg_at_end"] = loadavg()
        return result
    finally:
        for scratch in reversed(copies):
            scratch.drop()


def reports(base: Scratch, rows: int) -> Result:
    """The migration report and the archive reconciliation, timed."""
    timing, report = timed_call(base.url, "select public.multi_waba_migration_report()", rows)
    out: Result = {"report": timing | {"result": report[0][0]}}
    timing, rec = timed_call(base.url, "select landlord_id, matches from public.reconcile_multi_waba_archive()", rows)
    out["reconcile"] = timing | {"landlords": len(rec), "all_match": all(r[1] for r in rec)}
    return out


def verdict(result: Result) -> bool:
    """Reconciled, nothing pending, and the same state whatever the batch size."""
    return bool(
        result["reconcile"]["all_match"]
        and result["results_identical_across_batch_sizes"]
        and result["report"]["result"]["pending"] == 0
    )


# --- the benchmark ---------------------------------------------------------------------------


def measure(ctx: Context) -> Result:
    rows = ctx.profile.backfill_rows
    log.info("    %s rows, in databases %s_b*", f"{rows:,}", ctx.scratch.name)
    server = with_database(ctx.scratch.url, "postgres")
    return {"status": "ok", "rows": rows} | measure_history(server, rows, prefix=ctx.scratch.name)


def version(migration: str) -> str:
    return migration.split("_", 1)[0]


def steps_table(r: Result) -> str:
    copy, phase3 = r.get("archive_copy", {}), r.get("phase3", {})
    rows = [
        ["generate the history (SQL)", r.get("generate_seconds"), "", ""],
        ["supabase db push over the history (all later migrations)", r.get("db_push_total_seconds"), "", ""],
        [
            f"archive copy ({version(copy.get('migration', '?'))})",
            copy.get("seconds"),
            copy.get("rows_per_second"),
            copy.get("wal_bytes"),
        ],
        [f"phase 3 ({version(phase3.get('migration', '?'))})", phase3.get("seconds"), "", phase3.get("wal_bytes")],
    ]
    for size, b in (r.get("backfill") or {}).items():
        bm = b.get("batch_ms", {})
        times = " / ".join(fmt(bm.get(k)) for k in ("median", "p95", "max"))
        what = f"backfill, batches of {size} (median / p95 / max batch {times} ms)"
        rows.append([what, b.get("seconds"), b.get("rows_per_second"), b.get("wal_bytes")])
    rows.append(["multi_waba_migration_report()", (r.get("report") or {}).get("seconds"), "", ""])
    rec = r.get("reconcile") or {}
    rows.append(
        [f"reconcile_multi_waba_archive() (all match: {fmt(rec.get('all_match'))})", rec.get("seconds"), "", ""]
    )
    return table(["step", "seconds", "rows/s", "WAL bytes"], rows)


BENCHMARK = Benchmark(
    name="backfill",
    measure=measure,
    in_full_run=False,  # 1M rows take about ten minutes: its own job
    report=lambda r: {"steps_table": steps_table},
)

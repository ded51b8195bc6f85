"""10. Partitioning: public.whatsapp_messages as one table (today) or partitioned by month on
created_at, compared at each size of the profile (full: 10M full-width rows, 100M narrow rows) in
a scratch database of its own (<database>_partitioning, dropped afterwards).

Both layouts have the columns, defaults, generated column, CHECK constraints and index set of
public.whatsapp_messages, read from the catalog of the migrated scratch database, except what a
partitioned table cannot have: its primary key is (id, created_at) and the wamid index is not unique
(a unique index on a partitioned table must contain the partition key). For each size:

1. the generator and the insert path (bench/sql/partitioning_setup.sql), then each layout
   (partitioning_layout.sql): loaded by two psql sessions (partitioning_load.sql), constraints
   added NOT VALID, indexes built by two sessions (partial indexes that match few rows before the
   load, the rest after it), VACUUM ANALYZE (the partitioned one: ANALYZE, nothing needs its
   visibility map); the partitioned one also fills message_keys (the wamids of the last 35 days)
   for the `keyed` insert variant;
2. the inbox and lookup queries (bench/sql/partitioning_<query>.sql) at 1 client, with an EXPLAIN
   (ANALYZE, BUFFERS) of the generic plan (pgbench and PostgREST use prepared statements);
3. inserts of one current-month message (partitioning_insert.sql) at 1 and 2 clients: `locked`
   on both layouts (today's exactly-once: advisory lock + lookup by wamid), `bounded` and `keyed`
   on the partitioned one (see bench.store_message);
4. table and index sizes;
5. retention of the oldest month: DELETE + VACUUM on the plain table (time, WAL, what is left),
   DETACH PARTITION CONCURRENTLY + DROP (and plain DETACH + DROP, pg_partman's way, of the next
   month) on the partitioned one, each while a probe inserts ~100 messages/s.

Both layouts are loaded side by side and measured back to back when they fit on disk together
(the 10M size); the 100M size builds, measures and drops one layout after the other.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import logging
import queue
import random
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from bench.benchmarks.inbox_rls import measured_query
from bench.harness.benchmark import Benchmark, Context
from bench.harness.numbers import human, percentile, ratio, rnd
from bench.harness.paths import SQL
from bench.harness.pgbench import pgbench
from bench.harness.plots import plt
from bench.harness.report import fmt, table
from bench.harness.results import Result, loadavg
from bench.harness.scratch import Scratch, psql_file, superuser_url, with_database

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

CONVERSATIONS_PER_MESSAGE = 633_333 / 10_000_000  # the large world's
TENANTS_PER_MESSAGE = 0.1
HISTORY_MONTHS = 24
SAMPLES = 1000
CHUNK_ROWS = 500_000
SESSIONS = 2  # loaders and index builders at once (the machine has two cores)
# Bytes per row on disk, heap and indexes (partitioned, measured at 200k / 2M rows), for the disk check.
BYTES_PER_ROW = {False: 640, True: 370}
TOGETHER_BYTES = 20 * 2**30  # both layouts at once below this
DISK_MARGIN_BYTES = 4 * 2**30  # WAL and the rest of the cluster
KEYS_DAYS = 35  # message_keys keeps this many days of wamids (Meta retries a webhook for up to 7)
PARTIAL_BEFORE_LOAD = 0.05  # partial indexes matching fewer rows than this are built before the load
PROBE_PER_S = 100
MAINTENANCE_WORK_MEM = "2GB"  # per index-building session: the 100M-row sorts stay (mostly) in memory


@dataclasses.dataclass(frozen=True)
class Layout:
    name: str  # its schema
    partitioned: bool
    variants: tuple[str, ...]  # insert variants it is measured with

    def url(self, url: str) -> str:
        """`url` with search_path set to this layout's schema (pgbench and psycopg alike)."""
        parts = urlsplit(url)
        query = [*parse_qsl(parts.query), ("options", f"-c search_path={self.name}")]
        return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


PLAIN = Layout("plain", False, ("locked",))
PART = Layout("part", True, ("locked", "bounded", "keyed"))
LAYOUTS = (PLAIN, PART)
VARIANTS = {
    "locked": "advisory lock + lookup by wamid (today)",
    "bounded": "advisory lock + lookup by wamid in the last 35 days",
    "keyed": "wamid primary key in message_keys, then the message",
}
QUERIES = [
    ("page", "50 newest messages of a conversation (as the client asks: no time bound)"),
    ("page_bounded", "the same within the last 90 days"),
    ("page_deep", "50 messages before a keyset cursor (deep page)"),
    ("by_id", "one message by id"),
    ("by_wamid", "one message by wamid (status update)"),
]
CLIENTS = (1, 2)


@dataclasses.dataclass(frozen=True)
class Size:
    rows: int
    narrow: bool
    conversations: int
    tenants: int
    start: dt.datetime  # the first month of the history
    stop: dt.datetime  # now, when the size is set up

    @property
    def label(self) -> str:
        return f"{human(self.rows)} rows, {'narrow' if self.narrow else 'full-width'}"

    def defines(self) -> dict[str, Any]:
        return {"conversations": self.conversations, "tenants": self.tenants, "narrow": str(self.narrow).lower()}

    def month(self, k: int) -> tuple[dt.datetime, dt.datetime]:
        """The k-th month of the history (0: the oldest), as [from, to)."""
        return add_months(self.start, k), add_months(self.start, k + 1)


def add_months(t: dt.datetime, months: int) -> dt.datetime:
    total = t.year * 12 + t.month - 1 + months
    return t.replace(year=total // 12, month=total % 12 + 1)


def make_size(rows: int, narrow: bool) -> Size:
    now = dt.datetime.now(dt.UTC)
    this_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return Size(
        rows=rows,
        narrow=narrow,
        conversations=max(50, round(rows * CONVERSATIONS_PER_MESSAGE)),
        tenants=max(100, round(rows * TENANTS_PER_MESSAGE)),
        start=add_months(this_month, -HISTORY_MONTHS),
        stop=now,
    )


# --- the benchmark ---------------------------------------------------------------------------


def measure(ctx: Context) -> Result:
    scratch = Scratch(with_database(ctx.scratch.url, "postgres"), f"{ctx.scratch.name}_partitioning")
    log.info("    scratch database %s", scratch.name)
    started = time.monotonic()
    sizes = []
    try:
        scratch.create()
        for rows, narrow in ctx.profile.partition_sizes:
            sizes.append(measure_size(ctx, scratch, make_size(rows, narrow)))
    finally:
        scratch.drop()
    return rnd(
        {
            "status": "ok",
            "database": scratch.name,
            "seconds": time.monotonic() - started,
            "sizes": sizes,
            "variants": VARIANTS,
            "queries": dict(QUERIES),
        }
    )


def measure_size(ctx: Context, scratch: Scratch, size: Size) -> Result:
    log.info("    %s: %s conversations, history %s .. %s", size.label, f"{size.conversations:,}", size.start, size.stop)
    started = time.monotonic()
    scratch.execute("drop schema if exists bench cascade")  # the previous size's
    setup(scratch, size)
    plan = plan_indexes(scratch, size)
    need = size.rows * BYTES_PER_ROW[size.narrow]
    together = 2 * need < TOGETHER_BYTES
    result: Result = {
        "rows": size.rows,
        "narrow": size.narrow,
        "label": size.label,
        "conversations": size.conversations,
        "tenants": size.tenants,
        "history": {"start": size.start.isoformat(), "stop": size.stop.isoformat(), "months": HISTORY_MONTHS},
        "layouts_side_by_side": together,
        "indexes_before_load": sorted(plan.before_load),
        "disk": {"free_gb_at_start": round(free_bytes(scratch) / 2**30, 1)},
        "layouts": {},
    }
    groups = [list(LAYOUTS)] if together else [[layout] for layout in LAYOUTS]
    for group in groups:
        if free_bytes(scratch) < need * len(group) + DISK_MARGIN_BYTES:
            reason = f"needs ~{need * len(group) / 2**30:.0f} GB, {free_bytes(scratch) / 2**30:.0f} GB free"
            log.warning("    %s: skipped, %s", size.label, reason)
            result["status"] = f"skipped: {reason}"
            break
        for layout in group:
            result["layouts"][layout.name] = {"build": build(scratch, size, layout, plan)}
        result["disk"].setdefault("database_gb", []).append(round(database_bytes(scratch) / 2**30, 1))
        result["disk"].setdefault("free_gb_loaded", []).append(round(free_bytes(scratch) / 2**30, 1))
        measure_layouts(ctx, scratch, size, group, result)
        for layout in group:
            scratch.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(layout.name)).as_string())
    result["seconds"] = time.monotonic() - started
    return result


def measure_layouts(ctx: Context, scratch: Scratch, size: Size, layouts: list[Layout], result: Result) -> None:
    """Queries, inserts, sizes and retention, each layout back to back with the others of the group."""
    out = {layout.name: result["layouts"][layout.name] for layout in layouts}
    scratch.checkpoint()
    if "page_bounded_complete" not in result:
        result["page_bounded_complete"] = bounded_complete(scratch, layouts[0])
    for name, _ in QUERIES:
        for layout in layouts:
            out[layout.name].setdefault("queries", {})[name] = measure_query(ctx, scratch, layout, name)
    for variant in VARIANTS:
        for clients in CLIENTS:
            for layout in layouts:
                if variant in layout.variants:
                    run = measure_insert(ctx, scratch, size, layout, variant, clients)
                    out[layout.name].setdefault("inserts", []).append(run)
    for layout in layouts:
        out[layout.name]["sizes"] = layout_sizes(scratch, layout)
    for layout in layouts:
        out[layout.name]["retention"] = retention(scratch, size, layout)


# --- setup and load ----------------------------------------------------------------------------


def setup(scratch: Scratch, size: Size) -> None:
    variables = {
        "rows": size.rows,
        "conversations": size.conversations,
        "tenants": size.tenants,
        "narrow": str(size.narrow).lower(),
        "start": size.start.isoformat(),
        "stop": size.stop.isoformat(),
        "samples": SAMPLES,
    }
    psql_file(scratch.url, SQL / "partitioning_setup.sql", variables, quiet=True)
    with psycopg.connect(superuser_url(scratch.url), autocommit=True) as conn:
        conn.execute("create extension if not exists pgstattuple with schema bench")


@dataclasses.dataclass(frozen=True)
class IndexPlan:
    """The indexes of public.whatsapp_messages: name -> (unique, 'USING ...' clause, constraint type)."""

    indexes: dict[str, tuple[bool, str, str | None]]
    before_load: frozenset[str]  # partial indexes few generated rows match: maintained by the load
    checks: list[tuple[str, str]]  # CHECK constraints: name, definition


INDEXDEF = re.compile(r"^CREATE (UNIQUE )?INDEX (\S+) ON public\.whatsapp_messages (USING .*)$")


def plan_indexes(scratch: Scratch, size: Size) -> IndexPlan:
    """Read the index set and CHECK constraints of public.whatsapp_messages, and how many generated
    rows each partial index matches (in a sample of 20,000 rows loaded into bench.messages)."""
    rows = scratch.execute(
        """select c.relname, pg_get_indexdef(i.indexrelid), con.contype::text,
                  pg_get_expr(i.indpred, i.indrelid)
           from pg_index i
           join pg_class c on c.oid = i.indexrelid
           left join pg_constraint con on con.conindid = i.indexrelid and con.conrelid = i.indrelid
                                         and con.contype in ('p', 'u')
           where i.indrelid = 'public.whatsapp_messages'::regclass
           order by c.relname"""
    )
    indexes: dict[str, tuple[bool, str, str | None]] = {}
    predicates: dict[str, str] = {}
    for name, definition, contype, predicate in rows:
        m = INDEXDEF.match(definition)
        if m is None:
            raise RuntimeError(f"unexpected index definition: {definition}")
        indexes[name] = (bool(m.group(1)), m.group(3), contype)
        if predicate is not None:
            predicates[name] = predicate
    checks = scratch.execute(
        """select conname, pg_get_constraintdef(oid) from pg_constraint
           where conrelid = 'public.whatsapp_messages'::regclass and contype = 'c' order by conname"""
    )
    scratch.execute(
        "create table bench.messages (like public.whatsapp_messages including defaults including generated)"
    )
    psql_file(
        scratch.url, SQL / "partitioning_load.sql", load_variables(size, "bench", 1, min(20_000, size.rows)), quiet=True
    )
    before = set()
    for name, predicate in predicates.items():
        share = scratch.scalar(f"select avg(case when {predicate} then 1.0 else 0 end) from bench.messages")
        if float(share) < PARTIAL_BEFORE_LOAD:
            before.add(name)
    scratch.execute("drop table bench.messages")
    return IndexPlan(indexes, frozenset(before), [(name, definition) for name, definition in checks])


def load_variables(size: Size, schema: str, lo: int, hi: int) -> dict[str, Any]:
    return {
        "layout": schema,
        "lo": lo,
        "hi": hi,
        "rows": size.rows,
        "conversations": size.conversations,
        "tenants": size.tenants,
        "narrow": str(size.narrow).lower(),
        "start": size.start.isoformat(),
        "span_s": (size.stop - size.start).total_seconds(),
    }


def build(scratch: Scratch, size: Size, layout: Layout, plan: IndexPlan) -> Result:
    """The layout, loaded, constrained, indexed and vacuumed; the seconds of each step."""
    log.info("    %s: building %s", size.label, layout.name)
    seconds: Result = {}
    t0 = time.monotonic()
    psql_file(
        scratch.url,
        SQL / "partitioning_layout.sql",
        {"layout": layout.name, "partitioned": str(layout.partitioned).lower()},
        quiet=True,
    )
    tables = partitions(scratch, layout)
    run_parallel(scratch.url, index_statements(layout, tables, plan, before_load=True))
    seconds["create"] = time.monotonic() - t0

    t0 = time.monotonic()
    ranges = [(lo, min(lo + CHUNK_ROWS - 1, size.rows)) for lo in range(1, size.rows + 1, CHUNK_ROWS)]

    def load(r: tuple[int, int]) -> int:
        psql_file(scratch.url, SQL / "partitioning_load.sql", load_variables(size, layout.name, *r), quiet=True)
        return r[1] - r[0] + 1

    done = 0
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=SESSIONS)
    try:
        for n in pool.map(load, ranges):
            done += n
            if done % (10 * CHUNK_ROWS) == 0 or done == size.rows:
                log.info("      %s: %s / %s rows", layout.name, human(done), human(size.rows))
    finally:
        pool.shutdown(cancel_futures=True)  # an interrupt or a failure: no further chunks
    seconds["load"] = time.monotonic() - t0

    t0 = time.monotonic()
    target = f"{layout.name}.messages"
    for name, definition in plan.checks:
        scratch.execute(f"alter table {target} add constraint {name} {definition} not valid")
    seconds["constraints_not_valid"] = time.monotonic() - t0

    t0 = time.monotonic()
    run_parallel(scratch.url, index_statements(layout, tables, plan, before_load=False))
    for statement in attach_statements(layout, tables, plan):
        scratch.execute(statement)
    seconds["indexes"] = time.monotonic() - t0

    t0 = time.monotonic()
    if layout.partitioned:
        # The parent's statistics and every partition's (autovacuum never analyzes the parent). No
        # VACUUM: retention drops partitions, and no query here reads the visibility map.
        scratch.execute(f"analyze {target}")
    else:
        # What autovacuum leaves an old table in, so the VACUUM after the retention DELETE does
        # only the work the DELETE made.
        scratch.execute(f"vacuum (analyze) {target}")
    seconds["vacuum_analyze"] = time.monotonic() - t0

    if layout.partitioned:
        t0 = time.monotonic()
        scratch.execute(
            f"insert into {layout.name}.message_keys (wamid, message_id, created_at) select wamid, id, created_at "
            f"from {target} where created_at > %s::timestamptz - interval '{KEYS_DAYS} days'",
            [size.stop],
        )
        scratch.execute(f"alter table {layout.name}.message_keys add primary key (wamid)")
        scratch.execute(f"vacuum (analyze) {layout.name}.message_keys")
        seconds["message_keys"] = time.monotonic() - t0
    total = sum(seconds.values())
    log.info("      %s built in %.0f s: %s", layout.name, total, {k: round(v) for k, v in seconds.items()})
    return rnd({"seconds": seconds, "total_s": total, "partitions": len(tables) if layout.partitioned else 0})


def partitions(scratch: Scratch, layout: Layout) -> list[str]:
    """The tables that hold the rows: the partitions, newest first, or the one table."""
    if not layout.partitioned:
        return ["messages"]
    rows = scratch.execute(
        """select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid
           where i.inhparent = %s::regclass order by c.relname desc""",
        [f"{layout.name}.messages"],
    )
    return [r[0] for r in rows]


def short(index: str) -> str:
    return index.removeprefix("whatsapp_messages_")


def partition_clause(layout: Layout, name: str, unique: bool, using: str, contype: str | None) -> tuple[bool, str]:
    """The index as the layout has it: on a partitioned table the primary key gains created_at and the
    wamid index cannot be unique (a unique index there must contain the partition key)."""
    if layout.partitioned and contype == "p":
        return True, using.replace("(id)", "(id, created_at)")
    if layout.partitioned and contype == "u":
        return False, using
    return unique, using


def index_statements(layout: Layout, tables: list[str], plan: IndexPlan, before_load: bool) -> list[str]:
    """CREATE INDEX on every table of the layout (largest indexes first, so two sessions finish together)."""
    statements = []
    for name, (unique, using, contype) in plan.indexes.items():
        if (name in plan.before_load) != before_load:
            continue
        is_unique, clause = partition_clause(layout, name, unique, using, contype)
        for t in tables:
            index = name if not layout.partitioned else f"{t}_{short(name)}"
            statements.append(f"create {'unique ' if is_unique else ''}index {index} on {layout.name}.{t} {clause}")
    return statements


def attach_statements(layout: Layout, tables: list[str], plan: IndexPlan) -> list[str]:
    """The constraints over the indexes just built; on a partitioned table the parent's indexes,
    which attach the partitions' matching ones instead of building new ones."""
    out = []
    for name, (unique, using, contype) in plan.indexes.items():
        is_unique, clause = partition_clause(layout, name, unique, using, contype)
        if not layout.partitioned:
            if contype == "p":
                out.append(f"alter table {layout.name}.messages add constraint {name} primary key using index {name}")
            elif contype == "u":
                out.append(f"alter table {layout.name}.messages add constraint {name} unique using index {name}")
            continue
        if contype == "p":
            for t in tables:
                index = f"{t}_{short(name)}"
                out.append(f"alter table {layout.name}.{t} add constraint {index} primary key using index {index}")
            columns = clause.split("(", 1)[1].rsplit(")", 1)[0]
            out.append(f"alter table {layout.name}.messages add constraint {name} primary key ({columns})")
        else:
            out.append(f"create {'unique ' if is_unique else ''}index {name} on {layout.name}.messages {clause}")
    return out


def run_parallel(url: str, statements: list[str], sessions: int = SESSIONS) -> None:
    """Run statements on `sessions` connections at once (each one core: no parallel workers)."""
    if not statements:
        return
    todo: queue.Queue[str] = queue.Queue()
    for s in statements:
        todo.put(s)
    stop = threading.Event()  # a failure or an interrupt: the other sessions take nothing more

    def worker() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"set maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'")
            conn.execute("set max_parallel_maintenance_workers = 0")
            conn.execute("set client_min_messages = warning")
            while not stop.is_set():
                try:
                    statement = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    conn.execute(statement)
                except BaseException:
                    stop.set()
                    raise

    with concurrent.futures.ThreadPoolExecutor(max_workers=sessions) as pool:
        futures = [pool.submit(worker) for _ in range(sessions)]
        try:
            for f in futures:
                f.result()
        except BaseException:
            stop.set()
            raise


def free_bytes(scratch: Scratch) -> int:
    """Free space on the file system of the cluster's data directory (this machine: loopback only)."""
    with psycopg.connect(superuser_url(scratch.admin_url), autocommit=True) as conn:
        row = conn.execute("show data_directory").fetchone()
    assert row is not None
    return shutil.disk_usage(row[0]).free


def database_bytes(scratch: Scratch) -> int:
    return int(scratch.scalar("select pg_database_size(current_database())"))


# --- measurements ------------------------------------------------------------------------------


def bounded_complete(scratch: Scratch, layout: Layout) -> float:
    """Share of the sampled conversations whose 50 newest messages all fall within the last 90 days
    (the others need the unbounded query as well)."""
    with psycopg.connect(layout.url(scratch.url), autocommit=True) as conn:
        row = conn.execute(
            """select avg(case when n = 50 then 1.0 else 0 end) from (
                 select (select count(*) from (select 1 from messages m
                          where m.conversation_id = s.conversation_id and m.sent_at > now() - interval '90 days'
                          limit 50) x) as n
                 from bench.samples s) y"""
        ).fetchone()
    assert row is not None
    return float(row[0])


def measure_query(ctx: Context, scratch: Scratch, layout: Layout, name: str) -> Result:
    url = layout.url(scratch.url)
    script = f"partitioning_{name}"
    defines = {"samples": SAMPLES}
    if ctx.profile.partition_query.seconds:  # time-boxed (full) runs warm up first
        pgbench(url, script, 1, ctx.profile.partition_query.warm(), defines, ctx.work)
    run = pgbench(url, script, 1, ctx.profile.partition_query, defines, ctx.work)
    out = run.as_dict() | {"query_ms": run.statement_ms(("select id",)), "explain": explain(url, script)}
    log.info(
        "      %-12s %-5s p50 %.3f p99 %.3f ms, %s buffers, %s partitions scanned",
        name,
        layout.name,
        run.latency_ms["p50"],
        run.latency_ms["p99"],
        out["explain"]["buffers"],
        out["explain"]["partitions_scanned"],
    )
    return out


def explain(url: str, script: str) -> Result:
    """EXPLAIN (ANALYZE, BUFFERS) of the measured statement for the sample in the busiest
    conversation (the worst case of a page): the generic plan (what pgbench and PostgREST run
    after five executions) and the custom one (what the planner does knowing the parameters)."""
    statement, names = measured_query(script)
    out: Result = {}
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(
            """select s.* from bench.samples s, bench.params p where p.name = 'conversations'
               order by bench.msg_r(s.g, p.value::bigint), s.k limit 1"""
        )
        row = cur.fetchone()
        assert row is not None and cur.description is not None
        sample = dict(zip([d.name for d in cur.description], row, strict=True))
        args = sql.SQL(", ").join(sql.Literal(str(sample[k])) for k in names)
        execute = sql.SQL("execute bench_q ({})").format(args)
        for mode in ("generic", "custom"):
            conn.execute(sql.SQL("set plan_cache_mode = {}").format(sql.Literal(f"force_{mode}_plan")))
            conn.execute(sql.SQL("prepare bench_q as {}").format(sql.SQL(statement)))
            conn.execute(execute)  # warm the buffers the way the measured runs are
            text = "\n".join(r[0] for r in conn.execute(sql.SQL("explain (analyze, buffers) {}").format(execute)))
            conn.execute("deallocate bench_q")
            out[mode] = plan_summary(text)
    return out | {k: out["generic"][k] for k in ("buffers", "partitions_scanned", "subplans_removed")}


def plan_summary(text: str) -> Result:
    """What a plan read: buffers of the top node, partitions scanned and pruned, its time."""
    buffers = re.search(r"Buffers: shared (?:hit=(\d+))? ?(?:read=(\d+))?", text)
    removed = re.search(r"Subplans Removed: (\d+)", text)
    execution = re.search(r"Execution Time: ([0-9.]+) ms", text)
    return {
        "buffers": sum(int(g) for g in buffers.groups() if g) if buffers else None,
        "partitions_scanned": len(set(re.findall(r" on (messages_p\d+)", text))),
        "subplans_removed": int(removed.group(1)) if removed else 0,
        "execution_ms": float(execution.group(1)) if execution else None,
        "plan": text,
    }


def measure_insert(ctx: Context, scratch: Scratch, size: Size, layout: Layout, variant: str, clients: int) -> Result:
    url = layout.url(scratch.url)
    defines = size.defines() | {"variant": variant}
    if ctx.profile.partition_insert.seconds:  # time-boxed (full) runs warm up first
        pgbench(url, "partitioning_insert", clients, ctx.profile.partition_insert.warm(), defines, ctx.work)
    run = pgbench(url, "partitioning_insert", clients, ctx.profile.partition_insert, defines, ctx.work)
    log.info(
        "      insert %-7s %-5s %d client(s): %.0f rows/s, p50 %.3f p99 %.3f ms",
        variant,
        layout.name,
        clients,
        run.tps,
        run.latency_ms["p50"],
        run.latency_ms["p99"],
    )
    return {"variant": variant, "clients": clients, "run": run.as_dict(), "load_average": loadavg()}


def layout_sizes(scratch: Scratch, layout: Layout) -> Result:
    """Heap (with TOAST) and index bytes of the layout; per index over all partitions."""
    name = f"{layout.name}.messages"
    leaves = (
        "select relid from pg_partition_tree(%s::regclass) where isleaf"
        if layout.partitioned
        else "select %s::regclass"
    )
    tables = scratch.execute(
        f"""select sum(pg_table_size(relid)), sum(pg_indexes_size(relid)), count(*) from ({leaves}) t(relid)""",
        [name],
    )[0]
    per_index = scratch.execute(
        """select c.relname, coalesce((select sum(pg_relation_size(t.relid)) from pg_partition_tree(i.indexrelid) t),
                                      pg_relation_size(i.indexrelid))
           from pg_index i join pg_class c on c.oid = i.indexrelid
           where i.indrelid = %s::regclass order by 2 desc""",
        [name],
    )
    out: Result = {
        "heap_mb": int(tables[0]) / 2**20,
        "indexes_mb": int(tables[1]) / 2**20,
        "total_mb": (int(tables[0]) + int(tables[1])) / 2**20,
        "index_mb": {r[0]: int(r[1] or 0) / 2**20 for r in per_index},
    }
    if layout.partitioned:
        biggest = scratch.execute(
            """select max(pg_total_relation_size(relid)) from pg_partition_tree(%s::regclass) where isleaf""", [name]
        )[0][0]
        out["partitions"] = int(tables[2])
        out["largest_partition_mb"] = int(biggest) / 2**20
        out["message_keys_mb"] = (
            int(scratch.scalar(f"select pg_total_relation_size('{layout.name}.message_keys')")) / 2**20
        )
    return rnd(out, 1)


# --- retention -----------------------------------------------------------------------------


class Probe:
    """Inserts ~PROBE_PER_S messages/s (the `locked` variant) on its own connection while a
    retention step runs, recording when each started and how long it took."""

    def __init__(self, url: str, size: Size):
        self.url = url
        self.size = size
        self.samples: list[tuple[float, float]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.error: BaseException | None = None

    def run(self) -> None:
        rng = random.Random(7)
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                statement = "select bench.store_message(%s, %s, %s, 'locked', %s, %s, %s)"
                while not self.stopping.is_set():
                    args = (
                        rng.randrange(2**40),
                        rng.randrange(10**6),
                        rng.randint(1, 100),
                        self.size.conversations,
                        self.size.tenants,
                        self.size.narrow,
                    )
                    t0 = time.monotonic()
                    conn.execute(statement, args)
                    elapsed = time.monotonic() - t0
                    self.samples.append((t0, elapsed))
                    self.stopping.wait(max(0.0, 1 / PROBE_PER_S - elapsed))
        except BaseException as exc:  # noqa: BLE001 - re-raised by stop()
            self.error = exc

    def __enter__(self) -> Probe:
        self.thread.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join()
        if self.error is not None:
            raise self.error

    def during(self, t0: float, t1: float) -> Result:
        """The probe's inserts that started or were running between t0 and t1 (monotonic)."""
        ms = sorted(e * 1000 for s, e in self.samples if s < t1 and s + e > t0)
        return rnd(
            {
                "inserts": len(ms),
                "p50_ms": percentile(ms, 50),
                "p99_ms": percentile(ms, 99),
                "max_ms": ms[-1] if ms else None,
            }
        )


@contextmanager
def step(conn: psycopg.Connection[Any], probe: Probe, out: Result, key: str) -> Iterator[Result]:
    """Time a retention step with the WAL it writes and the probe's inserts meanwhile."""
    lsn = conn.execute("select pg_current_wal_lsn()").fetchone()
    assert lsn is not None
    entry: Result = {}
    t0 = time.monotonic()
    yield entry
    t1 = time.monotonic()
    wal = conn.execute("select pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [lsn[0]]).fetchone()
    assert wal is not None
    entry |= {"seconds": round(t1 - t0, 3), "wal_mb": round(int(wal[0]) / 2**20, 1), "probe": probe.during(t0, t1)}
    out[key] = entry
    log.info(
        "      retention %-28s %.2f s, WAL %.1f MB, probe inserts p99 %s ms max %s ms",
        key,
        entry["seconds"],
        entry["wal_mb"],
        entry["probe"]["p99_ms"],
        entry["probe"]["max_ms"],
    )


def retention(scratch: Scratch, size: Size, layout: Layout) -> Result:
    """Remove the oldest month: DELETE + VACUUM, or DETACH ... CONCURRENTLY + DROP (and the next
    month by plain DETACH + DROP), with the probe inserting meanwhile."""
    out: Result = {"month": size.month(0)[0].strftime("%Y-%m")}
    with (
        Probe(layout.url(scratch.url), size) as probe,
        psycopg.connect(superuser_url(scratch.url), autocommit=True) as conn,
    ):
        conn.execute("set maintenance_work_mem = '1GB'")
        if layout.partitioned:
            retire_partitions(conn, size, layout, probe, out)
        else:
            delete_month(conn, size, layout, probe, out)
    return out


def delete_month(conn: psycopg.Connection[Any], size: Size, layout: Layout, probe: Probe, out: Result) -> None:
    table = f"{layout.name}.messages"
    lo, hi = size.month(0)
    out["before"] = bloat(conn, layout)
    with step(conn, probe, out, "delete") as entry:
        cur = conn.execute(f"delete from {table} where created_at >= %s and created_at < %s", [lo, hi])
        entry["rows"] = cur.rowcount
    out["delete"]["rows_per_s"] = round(out["delete"]["rows"] / max(out["delete"]["seconds"], 1e-9))
    out["after_delete"] = bloat(conn, layout, pkey=False)  # a DELETE leaves the indexes as they were
    with step(conn, probe, out, "vacuum"):
        conn.execute(f"vacuum {table}")
    out["after_vacuum"] = bloat(conn, layout)


def bloat(conn: psycopg.Connection[Any], layout: Layout, pkey: bool = True) -> Result:
    """Sizes, dead rows and free space (pgstattuple_approx of the heap, pgstatindex of the primary
    key, which reads all of it)."""
    table = f"{layout.name}.messages"
    density = f"(select avg_leaf_density from bench.pgstatindex('{layout.name}.whatsapp_messages_pkey'))"
    row = conn.execute(
        f"""select pg_table_size('{table}'), pg_indexes_size('{table}'), h.dead_tuple_count, h.approx_free_percent,
                  {density if pkey else "null::float8"}
           from bench.pgstattuple_approx('{table}'::regclass) h"""
    ).fetchone()
    assert row is not None
    return rnd(
        {
            "heap_mb": row[0] / 2**20,
            "indexes_mb": row[1] / 2**20,
            "dead_rows": int(row[2]),
            "heap_free_percent": float(row[3]),
            "pkey_leaf_density_percent": None if row[4] is None else float(row[4]),
        },
        1,
    )


def retire_partitions(conn: psycopg.Connection[Any], size: Size, layout: Layout, probe: Probe, out: Result) -> None:
    for k, concurrently in ((0, True), (1, False)):
        lo, _ = size.month(k)
        partition = f"{layout.name}.messages_p{lo:%Y%m%d}"
        count = conn.execute(f"select count(*) from {partition}").fetchone()
        assert count is not None
        rows = int(count[0])
        key = "detach_concurrently" if concurrently else "detach"
        with step(conn, probe, out, key) as entry:
            mode = " concurrently" if concurrently else ""
            conn.execute(f"alter table {layout.name}.messages detach partition {partition}{mode}")
            entry["rows"] = rows
        with step(conn, probe, out, f"drop_after_{key}"):
            conn.execute(f"drop table {partition}")
        total = out[key]["seconds"] + out[f"drop_after_{key}"]["seconds"]
        out[key]["rows_per_s"] = round(rows / max(total, 1e-9))


# --- report ----------------------------------------------------------------------------------


def by_layout(s: Result, name: str) -> Result:
    return s.get("layouts", {}).get(name, {})


def insert_run(s: Result, layout: str, variant: str, clients: int) -> Result | None:
    return next(
        (
            x["run"]
            for x in by_layout(s, layout).get("inserts", [])
            if x["variant"] == variant and x["clients"] == clients
        ),
        None,
    )


def queries_table(s: Result) -> str:
    rows = []
    for name, what in QUERIES:
        p = by_layout(s, "plain").get("queries", {}).get(name)
        q = by_layout(s, "part").get("queries", {}).get(name)
        if p is None or q is None:
            continue
        rows.append(
            [
                what,
                p["latency_ms"]["p50"],
                p["latency_ms"]["p99"],
                q["latency_ms"]["p50"],
                q["latency_ms"]["p99"],
                ratio(q["latency_ms"]["p99"], p["latency_ms"]["p99"]),
                f"{fmt(p['explain']['buffers'])} / {fmt(q['explain']['buffers'])}",
                f"{fmt(p['explain']['custom']['buffers'])} / {fmt(q['explain']['custom']['buffers'])}",
                q["explain"]["partitions_scanned"],
            ]
        )
    header = [
        "query (1 client)",
        "plain p50 ms",
        "plain p99 ms",
        "partitioned p50 ms",
        "partitioned p99 ms",
        "p99 ratio",
        "buffers plain / partitioned",
        "custom plan: buffers",
        "partitions scanned",
    ]
    return table(header, rows)


def inserts_table(s: Result) -> str:
    rows = []
    base = {c: insert_run(s, "plain", "locked", c) for c in CLIENTS}
    for layout, variant in [("plain", "locked"), *[("part", v) for v in VARIANTS]]:
        cells: list[Any] = [f"{'plain' if layout == 'plain' else 'partitioned'}, {variant}: {VARIANTS[variant]}"]
        for c in CLIENTS:
            run = insert_run(s, layout, variant, c)
            b = base[c]
            cells += [
                run["tps"] if run else None,
                run["latency_ms"]["p99"] if run else None,
                ratio(run["tps"], b["tps"]) if run and b else None,
            ]
        rows.append(cells)
    header = ["insert of one message"]
    for c in CLIENTS:
        header += [f"{c} client{'s' if c > 1 else ''}: rows/s", "p99 ms", "vs plain"]
    return table(header, rows)


def sizes_table(s: Result) -> str:
    rows = []
    for layout, label in (("plain", "plain"), ("part", "partitioned")):
        b = by_layout(s, layout)
        if "sizes" not in b:
            continue
        z = b["sizes"]
        biggest = max(z["index_mb"].items(), key=lambda kv: kv[1]) if z["index_mb"] else ("", None)
        rows.append(
            [
                label,
                b["build"]["total_s"],
                z["heap_mb"],
                z["indexes_mb"],
                z["total_mb"],
                f"{short(biggest[0])} {fmt(biggest[1])}",
                z.get("largest_partition_mb"),
                z.get("message_keys_mb"),
            ]
        )
    header = [
        "layout",
        "built in s",
        "heap MB",
        "indexes MB",
        "total MB",
        "largest index MB",
        "largest partition MB",
        "message_keys MB",
    ]
    return table(header, rows)


def retention_table(s: Result) -> str:
    rows = []
    plain = by_layout(s, "plain").get("retention") or {}
    part = by_layout(s, "part").get("retention") or {}
    steps = [
        (plain, "delete", "DELETE one month"),
        (plain, "vacuum", "VACUUM after it"),
        (part, "detach_concurrently", "DETACH PARTITION ... CONCURRENTLY"),
        (part, "drop_after_detach_concurrently", "DROP TABLE (the detached month)"),
        (part, "detach", "DETACH PARTITION (pg_partman's way), next month"),
        (part, "drop_after_detach", "DROP TABLE"),
    ]
    for r, key, what in steps:
        e = r.get(key)
        if e is None:
            continue
        pr = e["probe"]
        rows.append([what, e.get("rows"), e["seconds"], e.get("rows_per_s"), e["wal_mb"], pr["p99_ms"], pr["max_ms"]])
    header = ["retention step", "rows", "seconds", "rows/s", "WAL MB", "probe insert p99 ms", "probe max ms"]
    return table(header, rows)


def bloat_table(s: Result) -> str:
    r = by_layout(s, "plain").get("retention") or {}
    rows = [
        [what, b["heap_mb"], b["indexes_mb"], b["dead_rows"], b["heap_free_percent"], b["pkey_leaf_density_percent"]]
        for what, b in (
            ("before", r.get("before")),
            ("after DELETE", r.get("after_delete")),
            ("after VACUUM", r.get("after_vacuum")),
        )
        if b
    ]
    header = ["plain table", "heap MB", "indexes MB", "dead rows", "heap free %", "pkey leaf density %"]
    return table(header, rows)


def plot(result: Result) -> Figure | None:
    """Per size: query p99, insert rows/s, retention seconds (log), plain against partitioned."""
    sizes = [s for s in result.get("sizes", []) if s.get("layouts")]
    if not sizes:
        return None
    fig, axes = plt.subplots(len(sizes), 3, figsize=(15, 3.8 * len(sizes)), squeeze=False)
    for row, s in zip(axes, sizes, strict=True):
        names = [n for n, _ in QUERIES]
        width = 0.4
        for j, (layout, label) in enumerate((("plain", "plain"), ("part", "partitioned"))):
            qs = by_layout(s, layout).get("queries", {})
            row[0].bar(
                [k + j * width for k in range(len(names))],
                [qs.get(n, {}).get("latency_ms", {}).get("p99") or 0 for n in names],
                width,
                label=label,
            )
        row[0].set_xticks([k + width / 2 for k in range(len(names))], names, fontsize=7)
        row[0].set(ylabel="p99 ms", title=f"Queries, {s['label']}")
        row[0].legend(fontsize=7)
        labels, values = [], []
        for layout, variant in [("plain", "locked"), *[("part", v) for v in VARIANTS]]:
            for c in CLIENTS:
                run = insert_run(s, layout, variant, c)
                labels.append(f"{layout} {variant} {c}c")
                values.append(run["tps"] if run else 0)
        row[1].barh(
            range(len(labels)), values, color=["tab:blue" if x.startswith("plain") else "tab:orange" for x in labels]
        )
        row[1].set_yticks(range(len(labels)), labels, fontsize=7)
        row[1].invert_yaxis()
        row[1].set(xlabel="rows / s", title="Insert one message")
        plain = by_layout(s, "plain").get("retention") or {}
        part = by_layout(s, "part").get("retention") or {}
        bars = [
            ("DELETE", plain.get("delete", {}).get("seconds")),
            ("VACUUM", plain.get("vacuum", {}).get("seconds")),
            ("DETACH CONC.", part.get("detach_concurrently", {}).get("seconds")),
            ("DROP", part.get("drop_after_detach_concurrently", {}).get("seconds")),
        ]
        row[2].bar(
            [b[0] for b in bars],
            [max(b[1] or 0, 1e-3) for b in bars],
            color=["tab:blue", "tab:blue", "tab:orange", "tab:orange"],
        )
        row[2].set_yscale("log")
        row[2].set(ylabel="seconds (log)", title="Retention of one month")
    return fig


def summary(result: Result) -> dict[str, Any]:
    return {
        "queries_table": queries_table,
        "inserts_table": inserts_table,
        "sizes_table": sizes_table,
        "retention_table": retention_table,
        "bloat_table": bloat_table,
    }


BENCHMARK = Benchmark(
    name="partitioning",
    measure=measure,
    plot=plot,
    report=summary,
    in_full_run=False,  # 10M + 100M rows take about 40 minutes and ~40 GB: its own job
)

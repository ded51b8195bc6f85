"""ZenRent benchmarks: scripts/bench [--quick] [--scale N] [--only NAME[,NAME]] [--out DIR].

Everything runs in a scratch database (default zr_bench) on the server of DATABASE_URL, created
fresh for each data set ("world") from supabase/local/platform.sql and every migration, and
dropped at the end; the project database is never touched. Data is generated in SQL
(bench/sql/world_*.sql, generate_series); database load comes from pgbench with the custom
scripts in bench/sql/, HTTP load from wrk (bench/webhook.lua) on loopback only. Every figure is
stored with a baseline measured in the same run, the machine and the load average, in
<out>/<name>.json with a plot <out>/<name>.png, and docs/benchmarks.md is refreshed from them
(between its `<!-- bench:... -->` markers; the readings written by people stay).

Benchmarks: inbox_rls, cache_question, inbound_routing, webhook_http, routing_upkeep, scale,
backfill (bench/backfill.py's run(rows, database_url), when that file exists).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import datetime as dt
import glob
import hashlib
import hmac
import importlib.util
import json
import logging
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql as pgsql

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
SQL = BENCH / "sql"
PROPOSALS = SQL / "proposals"
DEFAULT_OUT = BENCH / "results"
DOCS = ROOT / "docs" / "benchmarks.md"

ALL = ["inbox_rls", "cache_question", "inbound_routing", "webhook_http", "routing_upkeep", "scale", "backfill"]
CENTRAL_PHONE_NUMBER_ID = "100000000000001"
APP_SECRET = "bench-app-secret"
UNKNOWN_PCT = 3  # share of inbound messages from numbers nobody has

log = logging.getLogger("bench")
T0 = time.monotonic()


# --------------------------------------------------------------------------------------------
# Profiles: how much data and how long each measurement runs.

@dataclasses.dataclass(frozen=True)
class World:
    name: str
    tenants: int
    messages: int

    def label(self) -> str:
        return f"{human(self.tenants)} tenants / {human(self.messages)} messages"


@dataclasses.dataclass(frozen=True)
class Budget:
    """How long one pgbench run lasts: seconds (time-boxed, full runs) or transactions per client (quick runs)."""
    seconds: int = 0
    transactions: int = 0

    def warm(self) -> "Budget":
        return Budget(seconds=max(1, self.seconds // 4)) if self.seconds else Budget(transactions=max(10, self.transactions // 5))


@dataclasses.dataclass(frozen=True)
class Profile:
    mode: str
    small: World           # the 1x world (scale baseline)
    large: World           # the 10x world (headline figures)
    clients: tuple[int, ...]
    route: Budget          # each pgbench run of inbound routing and its baseline
    inbox: Budget          # each inbox query
    lookup: Budget         # cache question parts
    upkeep: Budget         # each kind of change, with and without triggers
    mv_refreshes: int
    mv_concurrent_refreshes: int
    http_s: int
    http_workers: tuple[int, ...]
    http_connections: int
    backfill_rows: int


def make_profile(quick: bool, scale: float) -> Profile:
    def w(name: str, tenants: int, messages: int) -> World:
        return World(name, max(200, int(tenants * scale)), max(2000, int(messages * scale)))

    if quick:
        return Profile("quick", w("small", 1_000, 10_000), w("large", 10_000, 100_000), (1, 2, 4, 8),
                       route=Budget(transactions=100), inbox=Budget(transactions=150), lookup=Budget(transactions=200),
                       upkeep=Budget(transactions=60), mv_refreshes=2, mv_concurrent_refreshes=1,
                       http_s=2, http_workers=(2,), http_connections=8, backfill_rows=max(1000, int(10_000 * scale)))
    return Profile("full", w("small", 100_000, 1_000_000), w("large", 1_000_000, 10_000_000), (1, 2, 4, 8),
                   route=Budget(seconds=10), inbox=Budget(seconds=5), lookup=Budget(seconds=8), upkeep=Budget(seconds=5),
                   mv_refreshes=3, mv_concurrent_refreshes=2,
                   http_s=10, http_workers=(2, 4), http_connections=8, backfill_rows=max(1000, int(1_000_000 * scale)))


# --------------------------------------------------------------------------------------------
# Small helpers.

def human(n: float) -> str:
    for div, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= div:
            v = n / div
            return f"{v:.0f}{suffix}" if v == int(v) else f"{v:.1f}{suffix}"
    return f"{n:.0f}"


def progress(msg: str) -> None:
    print(f"[{time.monotonic() - T0:7.1f}s] {msg}", flush=True)


def loadavg() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def with_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{user}:{password}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def percentile(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    if lo == hi:
        return sorted_values[lo]
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def rnd(x: Any, digits: int = 3) -> Any:
    if isinstance(x, float):
        return round(x, digits)
    if isinstance(x, dict):
        return {k: rnd(v, digits) for k, v in x.items()}
    if isinstance(x, list):
        return [rnd(v, digits) for v in x]
    return x


def assert_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("127.") and not host.startswith("/"):
        raise SystemExit(f"refusing to load-test {host!r}: benchmarks only target loopback addresses")


# --------------------------------------------------------------------------------------------
# Database plumbing.

class Scratch:
    """A scratch database on the server of DATABASE_URL, recreated from the migrations on demand."""

    def __init__(self, server_url: str, name: str, work: Path):
        self.admin_url = with_database(server_url, "postgres")
        self.name = name
        self.url = with_database(server_url, name)
        # The platform bootstrap needs the platform's superuser (postgres is not one, as on hosted).
        self.bootstrap_url = with_database(
            os.environ.get("ZR_DB_ADMIN_URL") or with_user(server_url, "supabase_admin", "postgres"), name)
        self.work = work
        assert_loopback(self.url)

    def drop(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(pgsql.SQL("drop database if exists {} with (force)").format(pgsql.Identifier(self.name)))

    def create(self) -> None:
        self.drop()
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(pgsql.SQL("create database {}").format(pgsql.Identifier(self.name)))
        psql_file(self.bootstrap_url, ROOT / "supabase" / "local" / "platform.sql", quiet=True)
        out = subprocess.run(["supabase", "db", "push", "--db-url", self.url, "--include-all", "--yes"],
                             cwd=ROOT, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError("supabase db push failed:\n" + out.stdout + out.stderr)
        self.execute("select public.configure_whatsapp(%s::jsonb)",
                     [json.dumps({"phone_number_id": CENTRAL_PHONE_NUMBER_ID, "display_phone_number": "447700000000"})])

    def execute(self, query: str, params: Any = None) -> list[tuple]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def scalar(self, query: str, params: Any = None) -> Any:
        rows = self.execute(query, params)
        return rows[0][0] if rows else None

    def timed(self, query: str, params: Any = None) -> float:
        with psycopg.connect(self.url, autocommit=True) as conn:
            start = time.perf_counter()
            conn.execute(query, params)
            return time.perf_counter() - start

    def checkpoint(self) -> None:
        # Benchmark hygiene, not project behaviour: CHECKPOINT needs a superuser (or pg_checkpoint),
        # which postgres is not, as on hosted; done as the platform's superuser, like the bootstrap.
        with psycopg.connect(self.bootstrap_url, autocommit=True) as conn:
            conn.execute("checkpoint")


def psql_file(url: str, path: Path, variables: dict[str, Any] | None = None, quiet: bool = False,
              prefix: str = "  ") -> None:
    cmd = ["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    for k, v in (variables or {}).items():
        cmd += ["-v", f"{k}={v}"]
    cmd += ["-f", str(path)]
    env = dict(os.environ, PGOPTIONS="-c client_min_messages=warning")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if not quiet and line.strip():
            progress(prefix + line.strip())
    if proc.wait() != 0:
        raise RuntimeError(f"psql -f {path.name} failed:\n" + "".join(lines[-30:]))


def machine(url: str) -> dict[str, Any]:
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    settings = ["shared_buffers", "work_mem", "maintenance_work_mem", "effective_cache_size", "synchronous_commit",
                "fsync", "wal_level", "max_wal_size", "checkpoint_timeout", "max_connections", "jit",
                "max_parallel_workers_per_gather", "random_page_cost"]
    with psycopg.connect(url, autocommit=True) as conn:
        version = conn.execute("select version()").fetchone()[0]
        values = {s: conn.execute(pgsql.SQL("show {}").format(pgsql.Identifier(s))).fetchone()[0] for s in settings}
    tools = {}
    for tool, args in (("pgbench", ["--version"]), ("wrk", ["--version"])):
        try:
            out = subprocess.run([tool, *args], capture_output=True, text=True)
            tools[tool] = (out.stdout or out.stderr).splitlines()[0].strip() if (out.stdout or out.stderr) else ""
        except FileNotFoundError:
            tools[tool] = None
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_kib / 1024 / 1024, 1),
            "kernel": platform.release(), "python": platform.python_version(), "postgres": version,
            "settings": values, "tools": tools}


# --------------------------------------------------------------------------------------------
# pgbench.

@dataclasses.dataclass
class Bench:
    """One time-boxed pgbench run: throughput and per-transaction latency from its -l log."""

    script: str
    clients: int
    duration_s: float
    transactions: int
    failed: int
    tps: float
    latency_ms: dict[str, float | None]
    statements_ms: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return rnd(dataclasses.asdict(self))


def pgbench(url: str, script: str, clients: int, budget: "Budget", defines: dict[str, Any], work: Path) -> Bench:
    """Run one pgbench script: time-boxed (-T) in full runs, a fixed number of transactions per client (-t) in quick ones."""
    run_dir = Path(tempfile.mkdtemp(prefix="pgbench-", dir=work))
    threads = max(1, min(clients, os.cpu_count() or 1))
    limit = ["-T", str(budget.seconds)] if budget.seconds else ["-t", str(budget.transactions)]
    cmd = ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", str(threads), *limit,
           "-r", "-l", "--log-prefix", str(run_dir / "log"), "-f", str(SQL / f"{script}.sql")]
    started = time.monotonic()
    for k, v in defines.items():
        cmd += ["-D", f"{k}={v}"]
    cmd.append(url)
    out = subprocess.run(cmd, capture_output=True, text=True)
    text = out.stdout + out.stderr
    if out.returncode != 0 or "aborted" in text:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise RuntimeError(f"pgbench {script} failed (exit {out.returncode}):\n{text[-3000:]}")
    latencies: list[float] = []
    failed = 0
    for path in glob.glob(str(run_dir / "log*")):
        with open(path) as f:
            for line in f:
                fields = line.split()
                if len(fields) < 3:
                    continue
                if fields[2].isdigit():
                    latencies.append(int(fields[2]) / 1000.0)
                else:
                    failed += 1
    shutil.rmtree(run_dir, ignore_errors=True)
    latencies.sort()
    m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", text)
    tps = float(m.group(1)) if m else 0.0
    m = re.search(r"number of failed transactions: (\d+)", text)
    if m:
        failed = max(failed, int(m.group(1)))
    statements = []
    in_stats = False
    for line in text.splitlines():
        if "statement latencies in milliseconds" in line:
            in_stats = True
            continue
        if in_stats:
            m = re.match(r"\s+([0-9.]+)\s+(\d+)\s+(.*)$", line)
            if m:
                statements.append({"ms": float(m.group(1)), "failures": int(m.group(2)), "command": m.group(3).strip()})
            elif line.strip():
                in_stats = False
    return Bench(script=script, clients=clients, duration_s=time.monotonic() - started, transactions=len(latencies),
                 failed=failed, tps=tps,
                 latency_ms={"mean": (sum(latencies) / len(latencies)) if latencies else None,
                             "p50": percentile(latencies, 50), "p90": percentile(latencies, 90),
                             "p99": percentile(latencies, 99), "max": latencies[-1] if latencies else None},
                 statements_ms=statements)


def measured_statement_ms(b: Bench, starts: tuple[str, ...]) -> float | None:
    for s in b.statements_ms:
        if s["command"].lower().startswith(starts):
            return s["ms"]
    return None


# --------------------------------------------------------------------------------------------
# Worlds.

def build_world(scratch: Scratch, world: World) -> dict[str, Any]:
    progress(f"world {world.name}: {world.label()} in database {scratch.name}")
    started = time.monotonic()
    scratch.create()
    progress("  database created from platform.sql + migrations")
    psql_file(scratch.url, SQL / "world_base.sql", {"tenants": world.tenants})
    psql_file(scratch.url, SQL / "world_messages_prepare.sql", {"tenants": world.tenants, "messages": world.messages})
    conversations = int(scratch.scalar("select value from bench.params where name = 'conversations'"))
    chunk = 500_000
    ranges = [(lo, min(lo + chunk - 1, world.messages)) for lo in range(1, world.messages + 1, chunk)]
    progress(f"  messages: {len(ranges)} chunk(s), 2 loaders")
    done = 0

    def load(r: tuple[int, int]) -> int:
        psql_file(scratch.url, SQL / "world_messages_chunk.sql",
                  {"lo": r[0], "hi": r[1], "messages": world.messages, "conversations": conversations}, quiet=True)
        return r[1] - r[0] + 1

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for n in pool.map(load, ranges):
            done += n
            progress(f"  messages loaded: {human(done)} / {human(world.messages)}")
    psql_file(scratch.url, SQL / "world_finish.sql", {"messages": world.messages})
    scratch.checkpoint()
    sizes = dict(scratch.execute(
        "select 'tenants', count(*) from public.tenants union all "
        "select 'landlords', count(*) from public.user_profiles union all "
        "select 'leases', count(*) from public.leases union all "
        "select 'routing_rows', count(*) from private.tenant_landlord_routing union all "
        "select 'conversations', count(*) from public.whatsapp_conversations union all "
        "select 'messages', count(*) from public.whatsapp_messages"))
    sizes["messages_table_mb"] = int(scratch.scalar("select pg_total_relation_size('public.whatsapp_messages') / 1048576"))
    sizes["generation_s"] = round(time.monotonic() - started, 1)
    progress(f"  world {world.name} ready in {sizes['generation_s']}s: {sizes}")
    return {"name": world.name, "tenants": world.tenants, "messages": world.messages, "actual": sizes}


# --------------------------------------------------------------------------------------------
# 3. Landlord inbox under RLS.

INBOX_QUERIES = [
    ("list", "50 conversations by last_message_at", "inbox_samples"),
    ("page", "50 newest messages of a conversation", "inbox_samples"),
    ("deep", "50 messages, deep keyset page", "deep_samples"),
    ("unread", "unread total (sum of unread_count)", "inbox_samples"),
]


def measured_query(script: str) -> tuple[str, list[str]]:
    """The statement after '-- measured query' in a pgbench script, with :vars as $1.. and their names."""
    text = (SQL / f"{script}.sql").read_text()
    body = text.split("-- measured query", 1)[1].split("\n", 1)[1]
    statement = body.split(";", 1)[0].strip()
    names: list[str] = []

    def sub(m: re.Match) -> str:
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"

    return re.sub(r"(?<!:):([a-z_]+)", sub, statement), names


def explain(scratch: Scratch, script: str, sample: dict[str, Any], rls: bool) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of the measured statement, generic and custom plan, as the role pgbench uses."""
    statement, names = measured_query(script)
    out: dict[str, Any] = {"statement": statement, "sample": {k: str(sample[k]) for k in names}}
    with psycopg.connect(scratch.url, autocommit=True) as conn:
        for mode in ("force_generic_plan", "force_custom_plan"):
            with conn.transaction():
                conn.execute(pgsql.SQL("set local plan_cache_mode = {}").format(pgsql.Literal(mode)))
                conn.execute("set local role authenticated" if rls else "set local role postgres")
                conn.execute("select set_config('request.jwt.claims', %s, true)", [sample["claims"]])
                conn.execute(pgsql.SQL("prepare bench_q as {}").format(pgsql.SQL(statement)))
                args = pgsql.SQL(", ").join(pgsql.Literal(str(sample[k])) for k in names)
                execute = pgsql.SQL("execute bench_q ({})").format(args) if names else pgsql.SQL("execute bench_q")
                conn.execute(execute)  # warm the buffers the way the measured runs are
                q = pgsql.SQL("explain (analyze, buffers) {}").format(execute)
                plan = "\n".join(r[0] for r in conn.execute(q).fetchall())
                conn.execute("deallocate bench_q")
            out["generic" if mode == "force_generic_plan" else "custom"] = plan
    out["seq_scan"] = any("Seq Scan" in out[k] for k in ("generic", "custom"))
    return out


def explain_sample(scratch: Scratch, table: str) -> dict[str, Any]:
    """The worst-case sample for EXPLAIN: the landlord with most conversations / the deepest page."""
    order = "depth desc" if table == "deep_samples" else \
        "(select count(*) from public.whatsapp_conversations c where c.landlord_id = s.landlord_id) desc, k"
    with psycopg.connect(scratch.url, autocommit=True) as conn:
        cur = conn.execute(f"select * from bench.{table} s order by {order} limit 1")
        cols = [d.name for d in cur.description]
        return dict(zip(cols, cur.fetchone()))


def bench_inbox(scratch: Scratch, prof: Profile, work: Path, variant: str = "current") -> dict[str, Any]:
    samples = {t: int(scratch.scalar(f"select count(*) from bench.{t}")) for t in ("inbox_samples", "deep_samples")}
    median_depth = scratch.scalar("select percentile_disc(0.5) within group (order by depth) from bench.deep_samples")
    scratch.execute("analyze public.whatsapp_messages, public.whatsapp_conversations")
    scratch.checkpoint()
    warm = prof.inbox.warm()
    for name, _, table in INBOX_QUERIES:  # warm caches and plan caches for every query first
        for kind in ("rls", "plain"):
            pgbench(scratch.url, f"inbox_{name}_{kind}", 1, warm, {"samples": samples[table]}, work)
    queries = {}
    starts = ("-- measured", "select id", "select coalesce")
    explain_samples = {t: explain_sample(scratch, t) for t in ("inbox_samples", "deep_samples")}
    for name, what, table in INBOX_QUERIES:
        runs = {}
        for kind in ("rls", "plain"):
            b = pgbench(scratch.url, f"inbox_{name}_{kind}", 1, prof.inbox, {"samples": samples[table]}, work)
            runs[kind] = b.as_dict() | {"query_ms": measured_statement_ms(b, starts)}
        sample = explain_samples[table]
        runs["rls"]["explain"] = explain(scratch, f"inbox_{name}_rls", sample, rls=True)
        runs["plain"]["explain"] = explain(scratch, f"inbox_{name}_plain", sample, rls=False)
        r, p = runs["rls"], runs["plain"]
        queries[name] = {
            "what": what, "rls": r, "plain": p,
            "ratio_p50": ratio(r["latency_ms"]["p50"], p["latency_ms"]["p50"]),
            "ratio_p99": ratio(r["latency_ms"]["p99"], p["latency_ms"]["p99"]),
            "ratio_query_mean": ratio(r["query_ms"], p["query_ms"]),
            "seq_scan": r["explain"]["seq_scan"] or p["explain"]["seq_scan"],
        }
        progress(f"    {name:7s} rls p50 {r['latency_ms']['p50']:.3f} p99 {r['latency_ms']['p99']:.3f} ms | "
                 f"plain p50 {p['latency_ms']['p50']:.3f} p99 {p['latency_ms']['p99']:.3f} ms | "
                 f"query {r['query_ms']} vs {p['query_ms']} ms")
    return rnd({"variant": variant, "samples": samples, "median_deep_page_depth": median_depth, "queries": queries})


def inbox_goals(res: dict[str, Any]) -> list[dict[str, Any]]:
    goals = []
    for name, q in res["queries"].items():
        goals.append(goal(f"{name}: p99 under RLS < 5 ms (whole transaction)", q["rls"]["latency_ms"]["p99"], "<", 5.0, "ms"))
        goals.append(goal(f"{name}: RLS / no-RLS p99 <= 1.5", q["ratio_p99"], "<=", 1.5, "x"))
        goals.append(goal(f"{name}: RLS / no-RLS query time (mean) <= 1.5", q["ratio_query_mean"], "<=", 1.5, "x"))
        goals.append(goal(f"{name}: no Seq Scan in EXPLAIN", 0 if not q["seq_scan"] else 1, "==", 0, ""))
    return goals


def goal(what: str, value: float | None, op: str, target: float, unit: str) -> dict[str, Any]:
    ops: dict[str, Callable[[float, float], bool]] = {
        "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b, "==": lambda a, b: a == b}
    met = None if value is None else ops[op](value, target)
    return rnd({"goal": what, "value": value, "target": f"{op} {target:g}{(' ' + unit) if unit else ''}", "met": met})


# --------------------------------------------------------------------------------------------
# 1. Inbound routing vs single-insert baseline; 6. the cache question.

def routing_defines(world: World, pad: int | None = None) -> dict[str, Any]:
    d = {"tenants": world.tenants, "unknown_pct": UNKNOWN_PCT}
    if pad is not None:
        d["pad"] = pad
    return d


def prepare_routing(scratch: Scratch, world: World, prof: Profile, work: Path) -> int:
    """Warm up routing, then size the baseline row like a routed whatsapp_messages row. Returns the pad."""
    scratch.execute("create table if not exists bench.baseline_insert (wamid text primary key, raw jsonb not null, pad text not null)")
    since = scratch.scalar("select now()")
    pgbench(scratch.url, "route_inbound", 2, prof.route.warm(), routing_defines(world), work)
    routed_width = float(scratch.scalar(
        "select avg(pg_column_size(m.*)) from public.whatsapp_messages m where m.created_at >= %s and m.direction = 'incoming'",
        [since]))
    pgbench(scratch.url, "baseline_insert", 2, prof.route.warm(), routing_defines(world, 0), work)
    base_width = float(scratch.scalar("select avg(pg_column_size(b.*)) from bench.baseline_insert b"))
    pad = max(0, int(round(routed_width - base_width)))
    scratch.execute("truncate bench.baseline_insert")
    progress(f"    routed row {routed_width:.0f} B, baseline row {base_width:.0f} B -> pad {pad} B")
    return pad


def bench_routing(scratch: Scratch, world: World, prof: Profile, work: Path,
                  clients: tuple[int, ...] | None = None, pad: int | None = None,
                  budget: Budget | None = None) -> dict[str, Any]:
    budget = budget or prof.route
    if pad is None:
        pad = prepare_routing(scratch, world, prof, work)
    else:
        pgbench(scratch.url, "route_inbound", 2, prof.route.warm(), routing_defines(world), work)
    scratch.execute("vacuum analyze public.whatsapp_messages, public.whatsapp_conversations, private.landlord_notifications")
    scratch.checkpoint()
    since = scratch.scalar("select now()")
    runs = []
    for c in clients or prof.clients:
        base = pgbench(scratch.url, "baseline_insert", c, budget, routing_defines(world, pad), work)
        route = pgbench(scratch.url, "route_inbound", c, budget, routing_defines(world), work)
        runs.append({"clients": c, "baseline": base.as_dict(), "routing": route.as_dict(),
                     "ratio_tps": rnd(ratio(route.tps, base.tps))})
        progress(f"    {c} client(s): routing {route.tps:7.0f}/s p50 {route.latency_ms['p50']:.2f} p99 "
                 f"{route.latency_ms['p99']:.2f} ms | baseline {base.tps:7.0f}/s p50 {base.latency_ms['p50']:.2f} "
                 f"p99 {base.latency_ms['p99']:.2f} ms | ratio {ratio(route.tps, base.tps):.2f}")
    routed = "from public.whatsapp_messages m where m.created_at >= %s and m.direction = 'incoming'"
    outcome = dict(scratch.execute(f"select m.routing_status, count(*) {routed} group by 1", [since]))
    total = sum(outcome.values()) or 1
    width = scratch.scalar(f"select avg(pg_column_size(m.*))::int {routed}", [since])
    return {"world": world.name, "tenants": world.tenants, "baseline_pad_bytes": pad, "routed_row_bytes": width,
            "routed_messages": total, "routing_outcomes": {k: round(v / total, 4) for k, v in sorted(outcome.items())},
            "runs": runs}


# Statements inside route_inbound_message, by the start of their text (auto_explain's Query Text).
BREAKDOWN_STEPS = [
    ("select public.route_inbound_message(", "the whole call (with auto_explain's own overhead)", 0),
    ("select *        from private.parse_message_content", "parse the message", 1),
    ("select pg_advisory_xact_lock", "advisory lock on the wamid", 1),
    ("select *               from public.whatsapp_messages m where m.wamid", "idempotency check (wamid)", 1),
    ("select *          from private.whatsapp_settings", "settings", 1),
    ("select coalesce(jsonb_agg(x order by x.landlord_id)", "routing lookup (candidates)", 1),
    ("select cv.id from public.whatsapp_conversations cv", "conversation lookup", 1),
    ("insert into public.whatsapp_conversations", "conversation upsert (new or changed conversation)", 1),
    ("insert into public.whatsapp_messages ( wamid", "message insert, with its triggers", 1),
    ("select 1 from only", "foreign key checks (all, nested)", 2),
    ("update public.whatsapp_conversations c set", "conversation counters (bump trigger)", 2),
    ("insert into private.landlord_notifications", "notification row (notify trigger)", 2),
    ("select pg_notify", "pg_notify (notify trigger)", 2),
    ("insert into private.phone_preferences", "courtesy / clarification bookkeeping", 1),
    ("select private.queue_system_reply", "system reply queued", 1),
]


def route_breakdown(scratch: Scratch, world: World, calls: int) -> dict[str, Any]:
    """Where a routed message's time goes: auto_explain durations of the statements inside
    route_inbound_message (timing only, no ANALYZE), summed per kind over `calls` messages."""
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    pattern = re.compile(r"duration: ([0-9.]+) ms\s+plan:\s*Query Text:\s*(.*)", re.S)

    def on_notice(diag: Any) -> None:
        m = pattern.search(diag.message_primary or "")
        if not m:
            return
        text = " ".join(m.group(2).split()).lower()
        for prefix, label, _ in BREAKDOWN_STEPS:
            if text.startswith(" ".join(prefix.split()).lower()):
                break
        else:
            label = "other statements"
        totals[label] = totals.get(label, 0.0) + float(m.group(1))
        counts[label] = counts.get(label, 0) + 1

    rng = random.Random(7)
    # Profiling, not project behaviour: LOAD 'auto_explain' and its settings need a superuser,
    # which postgres is not (as on hosted), so this one session is the platform's superuser's.
    with psycopg.connect(scratch.bootstrap_url, autocommit=True) as conn:
        conn.execute("load 'auto_explain'")
        for setting in ("auto_explain.log_min_duration = 0", "auto_explain.log_nested_statements = on",
                        "auto_explain.log_analyze = off", "auto_explain.log_timing = off",
                        "client_min_messages = log"):
            conn.execute(f"set {setting}")
        phones = []
        for _ in range(calls):
            t = rng.randint(1, world.tenants)
            if t % 20 == 0 or t % 100 == 2:
                t -= 1
            phones.append((("4478" if rng.randint(1, 100) <= UNKNOWN_PCT else "4477") + f"{t:08d}", t))
        statement = ("select public.route_inbound_message(jsonb_build_object('from', %s::text, 'id', %s::text, "
                     "'timestamp', extract(epoch from now())::bigint::text, 'type', 'text', "
                     "'text', jsonb_build_object('body', 'Hi, the boiler is making a strange noise again.')), "
                     "jsonb_build_object('profile', jsonb_build_object('name', 'Tenant ' || %s::text), 'wa_id', %s::text), "
                     "'{\"display_phone_number\": \"447700000000\", \"phone_number_id\": \"100000000000001\"}'::jsonb)")
        for i, (phone, t) in enumerate(phones[:20]):  # warm the plan caches first
            conn.execute(statement, [phone, f"wamid.HBgMWARM{i:08d}{rng.getrandbits(40):010X}", t, phone])
        conn.add_notice_handler(on_notice)
        for i, (phone, t) in enumerate(phones):
            conn.execute(statement, [phone, f"wamid.HBgMBRK{i:08d}{rng.getrandbits(40):010X}", t, phone])
        conn.remove_notice_handler(on_notice)
    order = [label for _, label, _ in BREAKDOWN_STEPS] + ["other statements"]
    level = {label: lv for _, label, lv in BREAKDOWN_STEPS} | {"other statements": 1}
    rows = [{"step": label, "level": level[label], "ms_per_message": totals[label] / calls,
             "statements_per_message": counts[label] / calls} for label in order if label in totals]
    statements = sum(r["ms_per_message"] for r in rows if r["level"] == 1)
    for r in rows:
        r["share_of_statements"] = r["ms_per_message"] / statements if statements else None
    return rnd({"calls": calls, "statements_ms_per_message": statements,
                "method": "auto_explain durations (log_analyze off); level-2 statements run inside the level-1 "
                "insert; shares are of the time spent in SQL statements (level 1), which leaves out plpgsql's own "
                "expressions (normalize_phone, JSON building) and commit; 'the whole call' includes auto_explain's "
                "own logging", "steps": rows}, 4)


def bench_cache_question(scratch: Scratch, world: World, prof: Profile, work: Path) -> dict[str, Any]:
    scratch.checkpoint()
    parts = {}
    for script in ("roundtrip", "normalize_phone", "routing_lookup", "route_inbound"):
        pgbench(scratch.url, script, 1, prof.lookup.warm(), routing_defines(world), work)
        b = pgbench(scratch.url, script, 1, prof.lookup, routing_defines(world), work)
        parts[script] = b.as_dict()
        progress(f"    {script:16s} mean {b.latency_ms['mean']:.3f} ms p50 {b.latency_ms['p50']:.3f} ms")
    floor = parts["roundtrip"]["latency_ms"]["mean"]
    full = parts["route_inbound"]["latency_ms"]["mean"]
    lookup = parts["routing_lookup"]["latency_ms"]["mean"]
    norm = parts["normalize_phone"]["latency_ms"]["mean"]
    work_ms = full - floor
    progress("    breakdown of route_inbound_message (auto_explain)")
    breakdown = route_breakdown(scratch, world, 60 if prof.mode == "quick" else 500)
    return rnd({
        "world": world.name, "tenants": world.tenants, "parts": parts, "breakdown": breakdown,
        "full_call_ms": full, "roundtrip_ms": floor,
        "lookup_ms_net": lookup - floor, "normalize_ms_net": norm - floor,
        "lookup_share_of_call": (lookup - floor) / work_ms if work_ms > 0 else None,
        "lookup_share_raw": lookup / full if full else None,
        "normalize_share_of_call": (norm - floor) / work_ms if work_ms > 0 else None,
    })


# --------------------------------------------------------------------------------------------
# 2. Routing upkeep: triggers vs no triggers vs REFRESH MATERIALIZED VIEW.

ROUTING_TRIGGERS = [("public.tenants", "tenants_routing"), ("public.leases", "leases_routing"),
                    ("public.properties", "properties_routing"), ("public.user_profiles", "user_profiles_routing")]


def routing_exact(scratch: Scratch) -> bool:
    diff = scratch.scalar(
        "select (select count(*) from (table private.tenant_landlord_routing except all "
        "select * from private.tenant_landlord_routing_source) a) + "
        "(select count(*) from (select * from private.tenant_landlord_routing_source except all "
        "table private.tenant_landlord_routing) b)")
    return diff == 0


def set_routing_triggers(scratch: Scratch, enabled: bool) -> None:
    verb = "enable" if enabled else "disable"
    for table, trigger in ROUTING_TRIGGERS:
        scratch.execute(f"alter table {table} {verb} trigger {trigger}")


def bench_upkeep(scratch: Scratch, world: World, prof: Profile, work: Path,
                 no_triggers_from: dict[str, Any] | None = None) -> dict[str, Any]:
    """Each kind of change with the routing triggers, then without them, then the materialized view.
    With no_triggers_from (a previous result), only the runs with triggers, compared to its runs without."""
    params = dict(scratch.execute("select name, value from bench.params"))
    agencies, landlords = int(params["agencies"]), int(params["landlords"])
    changes = [
        ("tenant_phone", "a tenant's phone number changes", "upkeep_tenant_phone", {"tenants": world.tenants}),
        ("tenant_name", "a tenant's name changes", "upkeep_tenant_name", {"tenants": world.tenants}),
        ("lease_status", "a lease ends or becomes active", "upkeep_lease_status", {"tenants": world.tenants}),
        ("opt_in_small", "a landlord (~10 tenants) turns WhatsApp on/off", "upkeep_opt_in",
         {"lo": agencies + 1, "hi": landlords}),
        ("opt_in_agency", "an agency (~1,000 tenants) turns WhatsApp on/off", "upkeep_opt_in",
         {"lo": 1, "hi": agencies}),
    ]
    scratch.checkpoint()
    results = {}
    for key, what, script, defines in changes:
        pgbench(scratch.url, script, 1, prof.upkeep.warm(), defines, work)
        with_t = pgbench(scratch.url, script, 1, prof.upkeep, defines, work)
        if no_triggers_from is not None:
            without_d = no_triggers_from["changes"][key]["no_triggers"]
            results[key] = {"what": what, "triggers": with_t.as_dict(), "no_triggers": without_d,
                            "ratio_mean": ratio(with_t.latency_ms["mean"], without_d["latency_ms"]["mean"])}
            progress(f"    {key:14s} triggers {with_t.latency_ms['mean']:.3f} ms | none (before) "
                     f"{without_d['latency_ms']['mean']:.3f} ms | x{results[key]['ratio_mean']:.2f}")
            continue
        set_routing_triggers(scratch, False)
        try:
            pgbench(scratch.url, script, 1, prof.upkeep.warm(), defines, work)
            without = pgbench(scratch.url, script, 1, prof.upkeep, defines, work)
        finally:
            set_routing_triggers(scratch, True)
        results[key] = {"what": what, "triggers": with_t.as_dict(), "no_triggers": without.as_dict(),
                        "ratio_mean": ratio(with_t.latency_ms["mean"], without.latency_ms["mean"])}
        progress(f"    {key:14s} triggers {with_t.latency_ms['mean']:.3f} ms | none {without.latency_ms['mean']:.3f} ms"
                 f" | x{results[key]['ratio_mean']:.2f}")
    if no_triggers_from is None:
        progress("    repairing the routing table after the runs without triggers")
        scratch.execute("select public.refresh_tenant_landlord_routing()")
        scratch.execute("analyze private.tenant_landlord_routing")
    # The triggers must have kept the table exact through every change above (checked after a
    # last burst of changes with triggers on).
    for key, what, script, defines in changes:
        pgbench(scratch.url, script, 2, prof.upkeep.warm(), defines, work)
    exact = routing_exact(scratch)
    progress(f"    routing table equals its defining query after the changes: {exact}")
    if no_triggers_from is not None:
        return rnd({"world": world.name, "tenants": world.tenants, "changes": results,
                    "routing_table_exact_after_changes": exact})

    progress("    the original design: a materialized view refreshed per change")
    rows = int(scratch.scalar("select count(*) from private.tenant_landlord_routing"))
    create_s = scratch.timed("create materialized view bench.tenant_landlord_routing_mv as "
                             "select * from private.tenant_landlord_routing_source")
    index_s = scratch.timed("create unique index on bench.tenant_landlord_routing_mv (lease_id)")
    index_s += scratch.timed("create index on bench.tenant_landlord_routing_mv (tenant_phone)")
    refresh = []
    for _ in range(prof.mv_refreshes):
        scratch.execute("update public.tenants set name = name || '.' where id = bench.uid(2, 1)")
        refresh.append(scratch.timed("refresh materialized view bench.tenant_landlord_routing_mv"))
    concurrent_refresh = []
    for _ in range(prof.mv_concurrent_refreshes):
        scratch.execute("update public.tenants set name = name || '.' where id = bench.uid(2, 1)")
        concurrent_refresh.append(scratch.timed("refresh materialized view concurrently bench.tenant_landlord_routing_mv"))
    scratch.execute("drop materialized view bench.tenant_landlord_routing_mv")
    refresh_ms = 1000 * sum(refresh) / len(refresh)
    conc_ms = 1000 * sum(concurrent_refresh) / len(concurrent_refresh) if concurrent_refresh else None
    progress(f"    refresh {refresh_ms:.0f} ms, concurrently {conc_ms if conc_ms is None else round(conc_ms)} ms "
             f"({rows} rows)")
    for key, r in results.items():
        per_change_mv = r["no_triggers"]["latency_ms"]["mean"] + refresh_ms
        r["mv_refresh_per_change_ms"] = per_change_mv
        r["ratio_mv_vs_triggers"] = ratio(per_change_mv, r["triggers"]["latency_ms"]["mean"])
        if conc_ms is not None:
            r["ratio_mv_concurrently_vs_triggers"] = ratio(r["no_triggers"]["latency_ms"]["mean"] + conc_ms,
                                                           r["triggers"]["latency_ms"]["mean"])
    return rnd({"world": world.name, "tenants": world.tenants, "routing_rows": rows, "changes": results,
                "routing_table_exact_after_changes": exact,
                "materialized_view": {"create_s": create_s, "index_s": index_s, "refresh_ms": [1000 * x for x in refresh],
                                      "refresh_mean_ms": refresh_ms,
                                      "refresh_concurrently_ms": [1000 * x for x in concurrent_refresh],
                                      "refresh_concurrently_mean_ms": conc_ms}})


# --------------------------------------------------------------------------------------------
# 4. Webhook over HTTP: the gunicorn service vs a bare signature-checking Flask endpoint.

MESSAGE_BODIES = ["Hi, the boiler is making a strange noise again.", "Rent sent this morning, thanks!",
                  "Can someone come and look at the leaking tap in the kitchen? It has been dripping since Sunday.",
                  "Ok", "What day is the inspection?",
                  "The front door lock is sticking, could you send someone this week please?",
                  "Thanks, see you then", "Is it ok if my sister stays for two weeks in March?"]


def webhook_bodies(path: Path, count: int, world: World, run_tag: str, seed: int) -> None:
    """count signed single-message webhooks with unique wamids, phones as in route_inbound.sql."""
    rng = random.Random(seed)
    now = int(time.time())
    with open(path, "w") as f:
        for i in range(count):
            t = rng.randint(1, world.tenants)
            if t % 20 == 0 or t % 100 == 2:
                t -= 1
            prefix = "4478" if rng.randint(1, 100) <= UNKNOWN_PCT else "4477"
            phone = f"{prefix}{t:08d}"
            wamid = f"wamid.HBgM{run_tag}{i:010d}{rng.getrandbits(48):012X}"
            body = {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
                "value": {"messaging_product": "whatsapp",
                          "metadata": {"display_phone_number": "447700000000", "phone_number_id": CENTRAL_PHONE_NUMBER_ID},
                          "contacts": [{"profile": {"name": f"Tenant {t}"}, "wa_id": phone}],
                          "messages": [{"from": phone, "id": wamid, "timestamp": str(now), "type": "text",
                                        "text": {"body": MESSAGE_BODIES[rng.randrange(len(MESSAGE_BODIES))]}}]},
                "field": "messages"}]}]}
            raw = json.dumps(body, separators=(",", ":")).encode()
            sig = "sha256=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
            f.write(sig + "\t" + raw.decode() + "\n")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    def __init__(self, app: str, workers: int, database_url: str, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, DATABASE_URL=database_url, WHATSAPP_APP_SECRET=APP_SECRET,
                   WHATSAPP_PHONE_NUMBER_ID=CENTRAL_PHONE_NUMBER_ID, ZR_ENV="development")
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen([gunicorn, "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers),
                                      "--graceful-timeout", "5", app], cwd=ROOT, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, path: str, ok: Callable[[int], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=2) as r:
                    if ok(r.status):
                        return
            except urllib.error.HTTPError as e:
                if ok(e.code):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn on {self.url} not ready after {timeout}s; see {self.log.name}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def wrk(url: str, bodies: Path, seconds: int, connections: int, threads: int = 2) -> dict[str, Any]:
    assert_loopback(url)
    env = dict(os.environ, ZR_BENCH_BODIES=str(bodies), ZR_BENCH_THREADS=str(threads))
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s",
           "-s", str(BENCH / "webhook.lua"), url + "/webhooks/whatsapp"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("ZR_RESULT ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    r = json.loads(line[len("ZR_RESULT "):])
    secs = r["duration_us"] / 1e6
    ok = r["requests"] - r["errors"]["status"]
    return rnd({"requests": r["requests"], "ok_requests": ok, "errors": r["errors"], "seconds": secs,
                "rps": r["requests"] / secs if secs else 0.0, "ok_rps": ok / secs if secs else 0.0,
                "latency_ms": {k: v / 1000.0 for k, v in r["latency_us"].items()},
                "connections": connections, "threads": threads})


def bench_webhook(scratch: Scratch, world: World, prof: Profile, work: Path,
                  bare_from: dict[str, Any] | None = None) -> dict[str, Any]:
    """The service and the bare endpoint at each worker count; with bare_from (a previous result)
    only the service, compared with that result's bare runs."""
    if not (ROOT / "app" / "webhook.py").exists():
        return {"status": "blocked", "reason": "app/webhook.py does not exist yet"}
    if shutil.which("wrk") is None:
        return {"status": "blocked", "reason": "wrk is not installed (scripts/setup installs it)"}
    runs = []
    per_run = prof.http_s * 3000 + 2000  # more unique wamids than the service can take in the run
    tag = 0
    apps = [("bench.bare_app:create_app()", "bare", "/webhooks/whatsapp", lambda s: s == 405),
            ("app:create_app()", "service", "/healthz", lambda s: s == 200)]
    if bare_from is not None:
        apps = apps[1:]
        runs = [r for r in bare_from["runs"] if r["app"] == "bare"]
        tag = 50
    for workers in prof.http_workers:
        for app, label, ready_path, ready in apps:
            tag += 1
            bodies, warm = work / f"bodies-{tag}.tsv", work / f"bodies-{tag}-warm.tsv"
            webhook_bodies(bodies, per_run, world, f"{tag:02d}", seed=tag)
            webhook_bodies(warm, 5000, world, f"W{tag:02d}", seed=1000 + tag)
            server = Gunicorn(app, workers, scratch.url, work / f"gunicorn-{label}-{workers}.log")
            try:
                server.wait_ready(ready_path, ready)
                wrk(server.url, warm, 1, prof.http_connections)  # warm up (workers, pools, plan caches)
                since = scratch.scalar("select now()")
                r = wrk(server.url, bodies, prof.http_s, prof.http_connections)
            finally:
                server.stop()
            warm.unlink()
            stored = int(scratch.scalar("select count(*) from public.whatsapp_messages m where m.created_at >= %s "
                                        "and m.direction = 'incoming'", [since]))
            r |= {"app": label, "workers": workers, "stored_messages": stored if label == "service" else None}
            bodies.unlink()
            runs.append(r)
            progress(f"    {label:7s} {workers} workers: {r['ok_rps']:7.0f} ok req/s, p50 {r['latency_ms']['p50']:.2f} "
                     f"p99 {r['latency_ms']['p99']:.2f} ms, non-2xx {r['errors']['status']}, "
                     f"socket errors {r['errors']['connect'] + r['errors']['read'] + r['errors']['write'] + r['errors']['timeout']}")
    pairs = []
    for workers in prof.http_workers:
        bare = next(r for r in runs if r["app"] == "bare" and r["workers"] == workers)
        svc = next(r for r in runs if r["app"] == "service" and r["workers"] == workers)
        pairs.append({"workers": workers, "service_rps": svc["ok_rps"], "bare_rps": bare["ok_rps"],
                      "ratio": ratio(svc["ok_rps"], bare["ok_rps"]), "service_p99_ms": svc["latency_ms"]["p99"],
                      "bare_p99_ms": bare["latency_ms"]["p99"]})
    return rnd({"status": "ok", "world": world.name, "tenants": world.tenants, "runs": runs, "pairs": pairs,
                "gunicorn": "sync workers, app:create_app() as deployed by scripts/run (ZR_WORKERS default 2)"})


# --------------------------------------------------------------------------------------------
# 7. Backfill (bench/backfill.py, written separately).

def bench_backfill(scratch: Scratch, prof: Profile) -> dict[str, Any]:
    """bench/backfill.py's own benchmark (it makes and drops its own scratch databases on the same server)."""
    path = BENCH / "backfill.py"
    if not path.exists():
        return {"status": "not available", "reason": "bench/backfill.py does not exist yet; run.py calls its "
                "run(rows, database_url) on a fresh scratch database when it appears"}
    spec = importlib.util.spec_from_file_location("bench_backfill", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    progress(f"  backfill: bench/backfill.py run(rows={prof.backfill_rows})")
    result = module.run(prof.backfill_rows, scratch.admin_url)
    return {"status": "ok", "rows": prof.backfill_rows} | result


# --------------------------------------------------------------------------------------------
# Plots.

def plot_all(results: dict[str, dict[str, Any]], out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out / f"{name}.png", dpi=110)
        plt.close(fig)

    r = results.get("inbound_routing")
    if r and r.get("worlds"):
        props = [p for p in (r.get("proposals") or []) if "result" in p]
        fig, axes = plt.subplots(1, 3 if props else 2, figsize=(16 if props else 11, 4.2))
        ax1, ax2 = axes[0], axes[1]
        if props:
            ax3 = axes[2]
            labels = [p["name"].replace("routing_", "") for p in props]
            cmax = max(x["clients"] for x in props[0]["result"]["runs"])
            for k, (c, style) in enumerate(((1, "tab:blue"), (cmax, "tab:orange"))):
                ys = [next(x for x in p["result"]["runs"] if x["clients"] == c)["routing"]["tps"] for p in props]
                bs = [next(x for x in p["result"]["runs"] if x["clients"] == c)["baseline"]["tps"] for p in props]
                xs = [i + (k - 0.5) * 0.4 for i in range(len(props))]
                ax3.bar(xs, ys, 0.4, color=style, label=f"routing, {c} client(s)")
                ax3.plot(xs, bs, "k_", markersize=18, label="baseline" if k == 0 else None)
            ax3.set_xticks(range(len(props)), labels, fontsize=7)
            ax3.set(ylabel="messages / s", title="Proposals (cumulative, large world)")
            ax3.legend(fontsize=7)
        for wname, w in r["worlds"].items():
            cs = [x["clients"] for x in w["runs"]]
            label = f"{human(w['tenants'])} tenants"
            ax1.plot(cs, [x["routing"]["tps"] for x in w["runs"]], "o-", label=f"route_inbound_message, {label}")
            ax1.plot(cs, [x["baseline"]["tps"] for x in w["runs"]], "s--", label=f"baseline insert, {label}")
            ax2.plot(cs, [x["routing"]["latency_ms"]["p99"] for x in w["runs"]], "o-", label=f"routing p99, {label}")
            ax2.plot(cs, [x["routing"]["latency_ms"]["p50"] for x in w["runs"]], "^:", label=f"routing p50, {label}")
        ax1.axhline(3000, color="grey", lw=0.8, ls=":")
        ax1.text(1, 3000, " goal 3,000/s", va="bottom", fontsize=8, color="grey")
        for ax in (ax1, ax2):
            ax.set_xscale("log", base=2)
            ax.set_xticks(list(r["clients"]), [str(c) for c in r["clients"]])
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax1.set(xlabel="pgbench clients", ylabel="messages / s", title="Inbound routing throughput")
        ax2.set(xlabel="pgbench clients", ylabel="ms", title="Routing latency")
        ax1.legend(fontsize=7)
        ax2.legend(fontsize=7)
        save(fig, "inbound_routing")

    r = results.get("inbox_rls")
    if r and r.get("worlds"):
        variants = [(f"{wname} world", w) for wname, w in r["worlds"].items()]
        variants += [(f"large, {p['name']}", p["result"]) for p in r.get("proposals", [])
                     if p["name"] != "before" and "result" in p]
        names = [q for q, _, _ in INBOX_QUERIES]
        fig, axes = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
        width = 0.8 / (2 * len(variants))
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for ax, stat in zip(axes, ("p50", "p99")):
            for i, (label, v) in enumerate(variants):
                for j, kind in enumerate(("rls", "plain")):
                    xs = [k + (2 * i + j) * width for k in range(len(names))]
                    ys = [v["queries"][n][kind]["latency_ms"][stat] for n in names]
                    ax.bar(xs, ys, width, color=colors[i % len(colors)], hatch="//" if kind == "plain" else None,
                           alpha=0.55 if kind == "plain" else 1.0,
                           label=f"{label}, {'RLS' if kind == 'rls' else 'no RLS (hatched)'}")
            if stat == "p99":
                ax.axhline(5, color="grey", lw=0.8, ls=":")
            ax.set(ylabel=f"{stat} ms (whole transaction)")
        axes[0].set_title("Landlord inbox queries, 1 client")
        axes[1].set_xticks([k + width * (len(variants) - 0.5) for k in range(len(names))], names)
        axes[0].legend(fontsize=7, ncol=2)
        save(fig, "inbox_rls")

    r = results.get("routing_upkeep")
    if r and r.get("changes"):
        keys = list(r["changes"])
        fig, ax = plt.subplots(figsize=(10, 4.2))
        w = 0.27
        series = [("no triggers", [r["changes"][k]["no_triggers"]["latency_ms"]["mean"] for k in keys]),
                  ("incremental triggers", [r["changes"][k]["triggers"]["latency_ms"]["mean"] for k in keys]),
                  ("REFRESH MATERIALIZED VIEW per change", [r["changes"][k]["mv_refresh_per_change_ms"] for k in keys])]
        for i, (label, ys) in enumerate(series):
            ax.bar([k + (i - 1) * w for k in range(len(keys))], ys, w, label=label)
        ax.set_yscale("log")
        ax.set_xticks(range(len(keys)), keys)
        ax.set(ylabel="ms per change (log)", title=f"Routing upkeep at {human(r['tenants'])} tenants")
        ax.legend(fontsize=8)
        save(fig, "routing_upkeep")

    r = results.get("webhook_http")
    if r and r.get("status") == "ok":
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
        labels = [f"{p['workers']} workers" for p in r["pairs"]]
        xs = range(len(labels))
        ax1.bar([x - 0.2 for x in xs], [p["bare_rps"] for p in r["pairs"]], 0.4, label="bare Flask (signature only)")
        ax1.bar([x + 0.2 for x in xs], [p["service_rps"] for p in r["pairs"]], 0.4, label="webhook service")
        ax1.axhline(1000, color="grey", lw=0.8, ls=":")
        ax1.set_xticks(list(xs), labels)
        ax1.set(ylabel="requests / s", title="Signed webhooks over loopback")
        ax1.legend(fontsize=8)
        ax2.bar([x - 0.2 for x in xs], [p["bare_p99_ms"] for p in r["pairs"]], 0.4, label="bare p99")
        ax2.bar([x + 0.2 for x in xs], [p["service_p99_ms"] for p in r["pairs"]], 0.4, label="service p99")
        ax2.set_xticks(list(xs), labels)
        ax2.set(ylabel="ms", title="p99 latency")
        ax2.legend(fontsize=8)
        save(fig, "webhook_http")

    r = results.get("scale")
    if r and r.get("rows"):
        fig, ax = plt.subplots(figsize=(10, 4.2))
        rows = r["rows"]
        ax.barh(range(len(rows)), [x["growth"] or 0 for x in rows], color=["tab:red" if (x["growth"] or 0) > 1.5 else "tab:green" for x in rows])
        ax.axvline(1.5, color="grey", lw=0.8, ls=":")
        ax.set_yticks(range(len(rows)), [x["metric"] for x in rows], fontsize=7)
        ax.set(xlabel="cost growth at 10x the data (1.0 = flat)", title="Scale behaviour")
        ax.invert_yaxis()
        save(fig, "scale")

    r = results.get("cache_question")
    if r and r.get("parts"):
        fig, ax = plt.subplots(figsize=(9, 2.8))
        floor = r["roundtrip_ms"]
        pieces = [("round trip + commit", floor), ("normalize_phone", max(0, r["normalize_ms_net"])),
                  ("routing lookup", max(0, r["lookup_ms_net"])),
                  ("rest: insert, conversation, notification, WAL", max(0, r["full_call_ms"] - floor - max(0, r["normalize_ms_net"]) - max(0, r["lookup_ms_net"])))]
        left = 0.0
        for label, v in pieces:
            ax.barh([0], [v], left=left, label=f"{label} {v:.3f} ms")
            left += v
        ax.set_yticks([])
        ax.set(xlabel="ms per route_inbound_message call (1 client, mean)", title="Where a routed message's time goes")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=2)
        save(fig, "cache_question")


# --------------------------------------------------------------------------------------------
# docs/benchmarks.md: tables between markers, readings kept.

def fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    if isinstance(v, float):
        if abs(v) >= 100:
            return f"{v:,.0f}"
        return f"{v:.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def goals_table(goals: list[dict[str, Any]]) -> str:
    return table(["goal", "measured", "target", "met"], [[g["goal"], g["value"], g["target"], g["met"]] for g in goals])


def render_section(name: str, r: dict[str, Any], image_prefix: str) -> str:
    if r.get("reused"):
        when = r.get("finished_at") or r.get("measured_at") or "?"
        parts = [f"_Measured {when} by a separate run (not re-measured by the last full run); JSON: `{name}.json`._", ""]
    else:
        parts = [f"_Run {r.get('finished_at', '?')} ({r.get('mode')}, scale {r.get('scale')}), load average "
                 f"{r.get('load_average', {}).get('start')} → {r.get('load_average', {}).get('end')}; "
                 f"JSON: `{name}.json`._", ""]
    png = f"{image_prefix}{name}.png"
    if name == "inbound_routing":
        for wname, w in r.get("worlds", {}).items():
            outcomes = ", ".join(f"{100 * v:.1f}% {k}" for k, v in sorted(w["routing_outcomes"].items(), key=lambda x: -x[1]))
            parts.append(f"**{human(w['tenants'])} tenants** (routed row {w['routed_row_bytes']} B, baseline row padded "
                         f"by {w['baseline_pad_bytes']} B; {fmt(w.get('routed_messages'))} messages routed: {outcomes})")
            parts.append("")
            parts.append(table(["clients", "routing msg/s", "p50 ms", "p99 ms", "baseline rows/s", "p50 ms", "p99 ms",
                                "routing / baseline"],
                               [[x["clients"], x["routing"]["tps"], x["routing"]["latency_ms"]["p50"],
                                 x["routing"]["latency_ms"]["p99"], x["baseline"]["tps"],
                                 x["baseline"]["latency_ms"]["p50"], x["baseline"]["latency_ms"]["p99"], x["ratio_tps"]]
                                for x in w["runs"]]))
            parts.append("")
        if r.get("proposals"):
            parts.append(f"**Proposals** on {r['proposals'][0]['world_label']}, applied cumulatively in the scratch "
                         "database only (`bench/sql/proposals/routing_*.sql`), each step measured with its own baseline:")
            parts.append("")
            rows = []
            for p in r["proposals"]:
                if "result" not in p:
                    rows.append([p["name"], "does not apply", "", "", "", "", ""])
                    continue
                for x in p["result"]["runs"]:
                    rows.append([p["name"], x["clients"], x["routing"]["tps"], x["routing"]["latency_ms"]["p50"],
                                 x["routing"]["latency_ms"]["p99"], x["baseline"]["tps"], x["ratio_tps"]])
            parts.append(table(["step", "clients", "routing msg/s", "p50 ms", "p99 ms", "baseline rows/s",
                                "routing / baseline"], rows))
            parts.append("")
    elif name == "inbox_rls":
        def inbox_table(v: dict[str, Any]) -> str:
            return table(["query", "RLS p50 ms", "RLS p99 ms", "no-RLS p50 ms", "no-RLS p99 ms", "p99 ratio",
                          "query mean ms RLS / no-RLS", "query ratio", "Seq Scan"],
                         [[q["what"], q["rls"]["latency_ms"]["p50"], q["rls"]["latency_ms"]["p99"],
                           q["plain"]["latency_ms"]["p50"], q["plain"]["latency_ms"]["p99"], q["ratio_p99"],
                           f"{fmt(q['rls']['query_ms'], 3)} / {fmt(q['plain']['query_ms'], 3)}", q["ratio_query_mean"],
                           "yes" if q["seq_scan"] else "none"] for q in v["queries"].values()])
        for wname, w in r.get("worlds", {}).items():
            parts.append(f"**{w['label']}** (median deep-page depth {w['median_deep_page_depth']} messages)")
            parts.append("")
            parts.append(inbox_table(w))
            parts.append("")
        for p in r.get("proposals", []):
            if "result" not in p:
                parts.append(f"**Proposal `{p['name']}`** does not apply to the current schema: {p.get('error', '')[:300]}")
                parts.append("")
                continue
            if p["name"] == "before":
                parts.append(f"**Before the proposals**, measured again at the end of {p['world_label']}:")
            else:
                parts.append(f"**Proposal `{p['name']}`** (`{p['file']}`, applied on top of the steps above in the "
                             "scratch database only):")
            parts.append("")
            parts.append(inbox_table(p["result"]))
            parts.append("")
        parts.append("Latencies are whole pgbench transactions (sample lookup, begin, set role, set_config, query, "
                     "commit) at 1 client; \"query mean\" is pgbench's per-statement mean for the query alone. "
                     "The EXPLAIN (ANALYZE, BUFFERS) plans (generic and custom) are in the JSON.")
        parts.append("")
    elif name == "routing_upkeep":
        mv = r["materialized_view"]
        parts.append(f"{fmt(r['routing_rows'])} routing rows at {human(r['tenants'])} tenants; routing table equal to "
                     f"its defining query after the changes: {fmt(r['routing_table_exact_after_changes'])}. "
                     f"Materialized view: created in {fmt(mv['create_s'])} s, REFRESH {fmt(mv['refresh_mean_ms'])} ms "
                     f"(mean of {len(mv['refresh_ms'])}), REFRESH CONCURRENTLY {fmt(mv['refresh_concurrently_mean_ms'])} ms.")
        parts.append("")
        parts.append(table(["change", "no triggers ms", "triggers ms", "p99 ms", "triggers / none", "MV refresh per change ms",
                            "MV / triggers", "MV concurrently / triggers"],
                           [[c["what"], c["no_triggers"]["latency_ms"]["mean"], c["triggers"]["latency_ms"]["mean"],
                             c["triggers"]["latency_ms"]["p99"], c["ratio_mean"], c["mv_refresh_per_change_ms"],
                             c["ratio_mv_vs_triggers"], c.get("ratio_mv_concurrently_vs_triggers")]
                            for c in r["changes"].values()]))
        parts.append("")
        if r.get("proposals"):
            parts.append(f"**Proposals** (`bench/sql/proposals/upkeep_*.sql`, scratch database only), with triggers, "
                         "against the runs without triggers above:")
            parts.append("")
            rows = []
            for p in r["proposals"]:
                if "result" not in p:
                    rows.append([p["name"], "does not apply", "", "", ""])
                    continue
                for c in p["result"]["changes"].values():
                    rows.append([p["name"], c["what"], c["triggers"]["latency_ms"]["mean"], c["triggers"]["latency_ms"]["p99"],
                                 c["ratio_mean"]])
                rows.append([p["name"], "routing table still exact", p["result"]["routing_table_exact_after_changes"], "", ""])
            parts.append(table(["step", "change", "triggers ms", "p99 ms", "triggers / none"], rows))
            parts.append("")
    elif name == "webhook_http":
        if r.get("status") != "ok":
            parts.append(f"**{r.get('status')}**: {r.get('reason')}")
            parts.append("")
            return "\n".join(parts)
        parts.append(table(["app", "gunicorn workers", "ok req/s", "p50 ms", "p99 ms", "non-2xx", "socket errors",
                            "messages stored"],
                           [[x["app"], x["workers"], x["ok_rps"], x["latency_ms"]["p50"], x["latency_ms"]["p99"],
                             x["errors"]["status"], x["errors"]["connect"] + x["errors"]["read"] + x["errors"]["write"]
                             + x["errors"]["timeout"], x["stored_messages"]] for x in r["runs"]]))
        parts.append("")
        parts.append(f"wrk: {r['runs'][0]['threads']} threads, {r['runs'][0]['connections']} connections, "
                     f"{fmt(r['runs'][0]['seconds'], 1)} s per run, one unique wamid per request.")
        parts.append("")
        after = r.get("after_routing_proposals")
        if after and after.get("status") == "ok":
            parts.append("With the routing proposals applied (`bench/sql/proposals/routing_*.sql`, scratch database only; "
                         "bare endpoint as above):")
            parts.append("")
            parts.append(table(["gunicorn workers", "service ok req/s", "p50 ms", "p99 ms", "service / bare"],
                               [[p["workers"], p["service_rps"], next(x for x in after["runs"] if x["app"] == "service"
                                                                      and x["workers"] == p["workers"])["latency_ms"]["p50"],
                                 p["service_p99_ms"], p["ratio"]] for p in after["pairs"]]))
            parts.append("")
    elif name == "scale":
        parts.append(table(["metric", "1x", "10x", "growth"],
                           [[x["metric"], x["small"], x["large"], x["growth"]] for x in r.get("rows", [])]))
        parts.append("")
    elif name == "cache_question":
        parts.append(table(["call (1 client)", "mean ms", "p50 ms", "p99 ms"],
                           [[k, v["latency_ms"]["mean"], v["latency_ms"]["p50"], v["latency_ms"]["p99"]]
                            for k, v in r["parts"].items()]))
        parts.append("")
        parts.append(f"Routing lookup: {fmt(r['lookup_ms_net'], 3)} ms of {fmt(r['full_call_ms'] - r['roundtrip_ms'], 3)} ms "
                     f"of work per call (round trip subtracted) = **{fmt(100 * (r['lookup_share_of_call'] or 0), 1)}%** "
                     f"({fmt(100 * (r['lookup_share_raw'] or 0), 1)}% without subtracting); normalize_phone "
                     f"{fmt(100 * (r['normalize_share_of_call'] or 0), 1)}%.")
        parts.append("")
        b = r.get("breakdown")
        if b:
            parts.append(f"Inside one call ({b['calls']} messages; {b['method']}):")
            parts.append("")
            parts.append(table(["step", "ms per message", "share of statement time"],
                               [[("&nbsp;&nbsp;&nbsp;&nbsp;" * x["level"]) + x["step"], x["ms_per_message"],
                                 f"{100 * x['share_of_statements']:.1f}%" if x["level"] else ""]
                                for x in b["steps"]]))
            parts.append("")
    elif name == "backfill":
        if r.get("status") != "ok":
            parts.append(f"**{r.get('status')}**: {r.get('reason')}")
            parts.append("")
            return "\n".join(parts)
        d = r.get("data", {})
        parts.append(f"Written by `bench/backfill.py` (its own method and notes are in `backfill.json`): "
                     f"{fmt(d.get('messages'))} multi-WABA messages, {fmt(d.get('landlords'))} landlords, "
                     f"{fmt(d.get('tenants'))} tenants; messages table {fmt(d.get('table_mb_before'))} MB before, "
                     f"{fmt(d.get('table_mb_after'))} MB after, archive {fmt(d.get('archive_mb'))} MB.")
        parts.append("")
        rows = [["generate the history (SQL)", r.get("generate_seconds"), "", ""],
                ["supabase db push over the history (all later migrations)", r.get("db_push_total_seconds"), "", ""]]
        ac = r.get("archive_copy", {})
        rows.append(["archive copy (20261125120000)", ac.get("seconds"), ac.get("rows_per_second"), ac.get("wal_bytes")])
        p3 = r.get("phase3", {})
        rows.append(["phase 3 (20261125120200)", p3.get("seconds"), "", p3.get("wal_bytes")])
        for size, b in (r.get("backfill") or {}).items():
            bm = b.get("batch_ms", {})
            rows.append([f"backfill, batches of {size} (median / p95 / max batch {fmt(bm.get('median'))} / "
                         f"{fmt(bm.get('p95'))} / {fmt(bm.get('max'))} ms)", b.get("seconds"), b.get("rows_per_second"),
                         b.get("wal_bytes")])
        rows.append(["multi_waba_migration_report()", (r.get("report") or {}).get("seconds"), "", ""])
        rec = r.get("reconcile") or {}
        rows.append([f"reconcile_multi_waba_archive() (all match: {fmt(rec.get('all_match'))})", rec.get("seconds"), "", ""])
        parts.append(table(["step", "seconds", "rows/s", "WAL bytes"], rows))
        parts.append("")
        parts.append(f"Same result with every batch size: {fmt(r.get('results_identical_across_batch_sizes'))}.")
        parts.append("")
        return "\n".join(parts)
    if r.get("goals"):
        parts.append(goals_table(r["goals"]))
        parts.append("")
    if r.get("_has_png"):
        parts.append(f"![{name}]({png})")
        parts.append("")
    return "\n".join(parts)


TEMPLATE = """# Benchmarks

How fast the Postgres-centred design is on this machine, and what limits it. Every figure is
measured with a baseline in the same run; the tables between the `bench:` markers are written by
`scripts/bench` from `bench/results/*.json` (do not edit them by hand), the readings under them
by people.

Run: `scripts/bench` (full, about 20 minutes), `scripts/bench --quick` (smoke test, under two
minutes, also run by `scripts/test`), `--only inbox_rls,inbound_routing`, `--scale 0.1`,
`--out DIR`. Everything happens in a scratch database (`zr_bench`) on the server of
`DATABASE_URL`, created from `supabase/local/platform.sql` and every migration and dropped
afterwards. Data comes from `bench/sql/world_*.sql` (generate_series), load from pgbench
(`-n -M prepared`, time-boxed, latencies from the `-l` log) with the scripts in `bench/sql/`,
HTTP load from wrk (`bench/webhook.lua`) on 127.0.0.1.

## Method

- **Data** (`bench/sql/world_*.sql`): two worlds, the 1x one (100k tenants, 1M messages) and the
  10x one (1M tenants, 10M messages; `--quick`: 1k/10k and 10k/100k). Per 2,000 tenants one
  agency landlord holds ~1,000 of them; the rest belong to small landlords (~10 each); 10% of
  landlords have not opted in. Tenant phones are typed in three formats, 5% of tenants have none,
  1% share a phone with another landlord's tenant; one property and lease per tenant (2% ended,
  2% pending, 10% with an older ended lease). 63% of tenants have a conversation; messages pick a
  conversation with a skew (a few conversations are thousands of messages long, most about ten),
  55% inbound (with the raw element Meta sent), 45% replies, 1% held unknown senders, spread over
  a year. Triggers are bypassed while loading and what they would compute (phone_e164, the
  routing table, conversation counters) is computed set-based; the generator checks phone_e164
  against `private.normalize_phone` on a sample.
- **Inbound messages** (`route_inbound.sql`): a text message as Meta sends it (fresh wamid,
  timestamp, body from a small set, contact name, metadata) from a random generated tenant phone,
  3% from numbers nobody has. The outcomes (delivered, landlord not opted in, unknown sender,
  ambiguous, blocked) are in the JSON.
- **Baseline** (`baseline_insert.sql`): the same JSON built the same way, inserted as one row as
  wide as a routed row (padded to the width measured in the same run) into a table whose only
  index is the unique wamid: the floor of storing one message durably. Baseline and routing run
  back to back at each client count.
- **Inbox** (`inbox_*_rls.sql`, `inbox_*_plain.sql`): as a landlord the way PostgREST runs a
  request (role authenticated, JWT claims via set_config, RLS) and as postgres with an explicit
  `landlord_id` filter, the same statements otherwise. Landlords and conversations are drawn
  through random messages (busy ones more often); deep pages start from a keyset cursor in the
  middle of a conversation of at least 100 messages.
- **Proposals** (`bench/sql/proposals/*.sql`): SQL changes these benchmarks suggest, applied in
  the scratch database only, cumulatively, at the end of the 10x world, each step measured
  against a fresh "before". They are not migrations: when one lands as a migration, delete its
  file here.
- **Backfill**: `bench/backfill.py` (its own benchmark; 1M rows take about ten minutes) is run by
  `scripts/bench --only backfill` and by `--quick`; the default full run shows the
  `bench/results/backfill.json` already there.
- The machine is shared: other engineers' test suites may run at the same time. The load average
  at the start and end of each benchmark is in every JSON and below; runs are short (5-10 s), so
  compare ratios measured back to back rather than absolute figures across runs.

## Machine

<!-- bench:machine:begin -->
<!-- bench:machine:end -->

## 1. Inbound routing

<!-- bench:inbound_routing:begin -->
<!-- bench:inbound_routing:end -->

_Reading: not written yet._

## 2. Routing upkeep

<!-- bench:routing_upkeep:begin -->
<!-- bench:routing_upkeep:end -->

_Reading: not written yet._

## 3. Landlord inbox under RLS

<!-- bench:inbox_rls:begin -->
<!-- bench:inbox_rls:end -->

_Reading: not written yet._

## 4. Webhook over HTTP

<!-- bench:webhook_http:begin -->
<!-- bench:webhook_http:end -->

_Reading: not written yet._

## 5. Scale behaviour

<!-- bench:scale:begin -->
<!-- bench:scale:end -->

_Reading: not written yet._

## 6. Cache question

<!-- bench:cache_question:begin -->
<!-- bench:cache_question:end -->

_Reading: not written yet._

## 7. Backfill

<!-- bench:backfill:begin -->
<!-- bench:backfill:end -->
"""


def render_machine(results: dict[str, dict[str, Any]]) -> str:
    any_r = next((r for r in results.values() if (r.get("machine") or {}).get("tools")), None)
    if not any_r:
        return "_No results yet._"
    m = any_r["machine"]
    s = m["settings"]
    loads = [f"{n}: {r['load_average']['start']} → {r['load_average']['end']}" for n, r in results.items()
             if r.get("load_average")]
    lines = [f"- {m['nproc']} cores ({m['cpu']}), {m['memory_gib']} GiB memory, Linux {m['kernel']}",
             f"- {m['postgres']}",
             "- " + ", ".join(f"{k} = {v}" for k, v in s.items()),
             f"- tools: {', '.join(f'{k}: {v}' for k, v in m['tools'].items())}",
             "- load average (1, 5, 15 min) at start → end of each benchmark: " + "; ".join(loads)]
    return "\n".join(lines)


def write_docs(results: dict[str, dict[str, Any]], path: Path, image_prefix: str) -> None:
    text = path.read_text() if path.exists() else TEMPLATE
    blocks = {"machine": render_machine(results)}
    for name, r in results.items():
        blocks[name] = render_section(name, r, image_prefix)
    for name, content in blocks.items():
        begin, end = f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"
        if begin not in text:
            text += f"\n## {name}\n\n{begin}\n{end}\n"
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{begin}\n{content.rstrip()}\n{end}{tail}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# --------------------------------------------------------------------------------------------
# Orchestration.

def scale_rows(routing: dict[str, Any] | None, inbox: dict[str, Any] | None) -> list[dict[str, Any]]:
    rows = []
    if routing and {"small", "large"} <= set(routing.get("worlds", {})):
        s, l = routing["worlds"]["small"], routing["worlds"]["large"]
        for c in (1, max(x["clients"] for x in s["runs"])):
            rs = next(x for x in s["runs"] if x["clients"] == c)
            rl = next(x for x in l["runs"] if x["clients"] == c)
            rows.append({"metric": f"routing ms per message, {c} client(s) (1/throughput)",
                         "small": 1000.0 * c / rs["routing"]["tps"], "large": 1000.0 * c / rl["routing"]["tps"]})
            rows.append({"metric": f"routing p99 ms, {c} client(s)", "small": rs["routing"]["latency_ms"]["p99"],
                         "large": rl["routing"]["latency_ms"]["p99"]})
    if inbox and {"small", "large"} <= set(inbox.get("worlds", {})):
        s, l = inbox["worlds"]["small"], inbox["worlds"]["large"]
        for q in s["queries"]:
            for stat in ("p50", "p99"):
                rows.append({"metric": f"inbox {q} (RLS) {stat} ms", "small": s["queries"][q]["rls"]["latency_ms"][stat],
                             "large": l["queries"][q]["rls"]["latency_ms"][stat]})
            rows.append({"metric": f"inbox {q} (RLS) query mean ms", "small": s["queries"][q]["rls"]["query_ms"],
                         "large": l["queries"][q]["rls"]["query_ms"]})
    for row in rows:
        row["growth"] = ratio(row["large"], row["small"])
    return rnd(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data, short runs: a smoke test (< 2 minutes)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every data size by N (default 1)")
    parser.add_argument("--only", default="", help="comma-separated benchmarks: " + ", ".join(ALL))
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="directory for <name>.json and <name>.png")
    parser.add_argument("--database", default="zr_bench", help="scratch database name (dropped and recreated)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database at the end")
    parser.add_argument("--no-proposals", action="store_true", help="skip bench/sql/proposals/*.sql")
    parser.add_argument("--docs", default=None, help="markdown file to refresh (default: docs/benchmarks.md when "
                        "--out is bench/results, else <out>/benchmarks.md)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    explicit = [x.strip() for x in args.only.split(",") if x.strip()]
    only = explicit or list(ALL)
    unknown = set(only) - set(ALL)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}; choose from {', '.join(ALL)}")
    if "scale" in only:
        only = list(dict.fromkeys(only + ["inbound_routing", "inbox_rls"]))
    prof = make_profile(args.quick, args.scale)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    docs = Path(args.docs) if args.docs else (DOCS if out == DEFAULT_OUT.resolve() else out / "benchmarks.md")
    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        raise SystemExit("DATABASE_URL is not set (scripts/bench sets it from scripts/lib.sh)")
    work = Path(tempfile.mkdtemp(prefix="zr-bench-"))
    scratch = Scratch(server_url, args.database, work)
    proposals = [] if args.no_proposals else sorted(PROPOSALS.glob("*.sql"))

    progress(f"benchmarks {', '.join(only)} ({prof.mode}, scale {args.scale}) -> {out}; scratch database "
             f"{scratch.name}; load average {loadavg()}")
    results: dict[str, dict[str, Any]] = {}
    meta: dict[str, Any] = {}

    def begin(name: str) -> dict[str, Any]:
        r = results.setdefault(name, {"benchmark": name, "mode": prof.mode, "scale": args.scale,
                                      "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                                      "load_average": {"start": loadavg()}})
        return r

    def finish(name: str) -> None:
        r = results[name]
        r["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        r["load_average"]["end"] = loadavg()
        if "machine" not in meta:
            meta["machine"] = machine(scratch.admin_url)
        if name != "backfill":  # backfill.py records its own machine
            r["machine"] = meta["machine"]

    def save(name: str) -> None:
        (out / f"{name}.json").write_text(json.dumps(results[name], indent=2, default=str) + "\n")

    def run_proposals(world: World) -> None:
        """Proposed SQL changes (bench/sql/proposals/<area>_<n>_*.sql), applied cumulatively in the
        scratch database at the end of the large world, each measured against a fresh 'before'."""
        for area, bench_name in (("inbox", "inbox_rls"), ("routing", "inbound_routing"), ("upkeep", "routing_upkeep")):
            files = [p for p in proposals if p.name.startswith(area + "_")]
            if bench_name not in only or not files or bench_name not in results:
                continue
            r = begin(bench_name)
            steps = []
            for step in [None, *files]:
                if step is not None:
                    progress(f"  proposal {step.name}: applying in the scratch database")
                    try:
                        psql_file(scratch.url, step, quiet=True)
                    except RuntimeError as exc:
                        # A proposal written against an older schema (or already landed as a
                        # migration): report it, do not fail the run; later steps build on it.
                        progress(f"    does not apply any more, skipping the rest of {area}: {exc}")
                        steps.append({"name": step.stem, "file": f"bench/sql/proposals/{step.name}",
                                      "world_label": world.label(), "status": "does not apply", "error": str(exc)})
                        break
                label = "before" if step is None else step.stem
                progress(f"  {bench_name} with proposals: {label}")
                if area == "inbox":
                    res = bench_inbox(scratch, prof, work, label)
                elif area == "routing":
                    main_run = r["worlds"][world.name]
                    res = bench_routing(scratch, world, prof, work, clients=(1, max(prof.clients)),
                                        pad=main_run["baseline_pad_bytes"],
                                        budget=Budget(seconds=8) if prof.route.seconds else prof.route)
                else:
                    res = bench_upkeep(scratch, world, prof, work, no_triggers_from=r)
                steps.append({"name": label, "file": None if step is None else f"bench/sql/proposals/{step.name}",
                              "world_label": world.label(), "result": res})
            r["proposals"] = steps
            finish(bench_name)
            save(bench_name)
            if area == "routing" and "webhook_http" in results and results["webhook_http"].get("status") == "ok":
                progress("  webhook_http again, with the routing proposals applied")
                w = begin("webhook_http")
                w["after_routing_proposals"] = bench_webhook(scratch, world, prof, work, bare_from=w)
                finish("webhook_http")
                save("webhook_http")

    try:
        need_small = any(x in only for x in ("inbox_rls", "inbound_routing"))
        need_large = any(x in only for x in ("inbox_rls", "inbound_routing", "cache_question", "webhook_http",
                                             "routing_upkeep"))
        for world in ([prof.small] if need_small else []) + ([prof.large] if need_large else []):
            info = build_world(scratch, world)
            meta.setdefault("machine", machine(scratch.url))
            meta.setdefault("worlds", {})[world.name] = info
            if "inbox_rls" in only:
                progress(f"  inbox_rls on {world.label()}")
                r = begin("inbox_rls")
                res = bench_inbox(scratch, prof, work)
                res["label"] = world.label()
                r.setdefault("worlds", {})[world.name] = res
                finish("inbox_rls")
                save("inbox_rls")
            if world is prof.large and "cache_question" in only:
                progress(f"  cache_question on {world.label()}")
                r = begin("cache_question")
                r |= bench_cache_question(scratch, world, prof, work)
                finish("cache_question")
                save("cache_question")
            if "inbound_routing" in only:
                progress(f"  inbound_routing on {world.label()}")
                r = begin("inbound_routing")
                r["clients"] = list(prof.clients)
                r.setdefault("worlds", {})[world.name] = bench_routing(scratch, world, prof, work)
                finish("inbound_routing")
                save("inbound_routing")
            if world is prof.large and "webhook_http" in only:
                progress(f"  webhook_http on {world.label()}")
                r = begin("webhook_http")
                r |= bench_webhook(scratch, world, prof, work)
                finish("webhook_http")
                save("webhook_http")
            if world is prof.large and "routing_upkeep" in only:
                progress(f"  routing_upkeep on {world.label()}")
                r = begin("routing_upkeep")
                r |= bench_upkeep(scratch, world, prof, work)
                finish("routing_upkeep")
                save("routing_upkeep")
            if world is prof.large and proposals:
                run_proposals(world)
        if "inbox_rls" in results:
            r = results["inbox_rls"]
            r["goals"] = inbox_goals(r["worlds"].get("large") or next(iter(r["worlds"].values())))
        if "inbound_routing" in results:
            r = results["inbound_routing"]
            big = r["worlds"].get("large") or next(iter(r["worlds"].values()))
            top = max(big["runs"], key=lambda x: x["routing"]["tps"])
            r["goals"] = [goal(f"routing >= 50% of baseline throughput ({c['clients']} client{'s' if c['clients'] > 1 else ''})", c["ratio_tps"], ">=", 0.5, "x")
                          for c in big["runs"]]
            r["goals"].append(goal("routing >= 3,000 messages/s with up to 8 clients (best)", top["routing"]["tps"], ">=",
                                   3000, "msg/s"))
        if "routing_upkeep" in results:
            r = results["routing_upkeep"]
            r["goals"] = [goal(f"{k}: triggers / no triggers <= 2", c["ratio_mean"], "<=", 2.0, "x")
                          for k, c in r["changes"].items()]
        if "webhook_http" in results and results["webhook_http"].get("status") == "ok":
            r = results["webhook_http"]
            best = max(r["pairs"], key=lambda p: p["service_rps"])
            r["goals"] = [goal("service >= 1,000 webhooks/s (best worker count)", best["service_rps"], ">=", 1000, "req/s"),
                          goal(f"service >= 60% of bare endpoint ({best['workers']} workers)", best["ratio"], ">=", 0.6, "x")]
        if "cache_question" in results:
            r = results["cache_question"]
            r["goals"] = []
        if "scale" in only:
            r = begin("scale")
            r["rows"] = scale_rows(results.get("inbound_routing"), results.get("inbox_rls"))
            r["worlds"] = meta.get("worlds")
            r["goals"] = [goal(f"{x['metric']}: growth <= 1.5", x["growth"], "<=", 1.5, "x") for x in r["rows"]
                          if "p99" not in x["metric"]]  # p99 rows are in the table; too noisy here for a verdict
            finish("scale")
        if "backfill" in only:
            existing = out / "backfill.json"
            if prof.mode == "full" and not explicit and existing.exists():
                # A full backfill run (1M rows, about ten minutes) is its own job: bench/backfill.py, or
                # scripts/bench --only backfill. The full run shows the result already there.
                progress(f"  backfill: showing {existing} (run scripts/bench --only backfill to measure it again)")
                results["backfill"] = json.loads(existing.read_text()) | {"status": "ok", "reused": True}
            elif prof.mode == "full" and not explicit:
                progress("  backfill: skipped in the default full run (scripts/bench --only backfill measures it)")
                results["backfill"] = {"status": "not run", "reused": True,
                                       "reason": "run scripts/bench --only backfill (or bench/backfill.py) to measure it"}
            else:
                r = begin("backfill")
                r |= bench_backfill(scratch, prof)
                finish("backfill")
                save("backfill")
    finally:
        if not args.keep:
            try:
                scratch.drop()
            except Exception as exc:  # noqa: BLE001 - report, do not mask the real error
                progress(f"could not drop scratch database {scratch.name}: {exc}")
        shutil.rmtree(work, ignore_errors=True)

    for name, r in results.items():
        if r.get("reused"):
            continue  # shown, not measured in this run: its file stays as it was
        r["worlds_generated"] = meta.get("worlds")
        (out / f"{name}.json").write_text(json.dumps(r, indent=2, default=str) + "\n")
    plot_all(results, out)
    image_prefix = os.path.relpath(out, docs.parent.resolve()) + "/" if docs.parent.resolve() != out else ""
    for name, r in results.items():
        r["_has_png"] = (out / f"{name}.png").exists()
    write_docs(results, docs, image_prefix)
    progress(f"done: {', '.join(f'{n}.json' for n in results)} in {out}; {docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

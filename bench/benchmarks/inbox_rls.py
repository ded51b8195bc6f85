"""3. Landlord inbox under RLS: each inbox query as a landlord through RLS and as postgres with an
explicit landlord filter (bench/sql/inbox_<query>_rls.sql / _plain.sql), with EXPLAIN plans."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from bench.harness.benchmark import Benchmark, Context
from bench.harness.numbers import ratio, rnd
from bench.harness.paths import SQL
from bench.harness.pgbench import pgbench
from bench.harness.plots import plt
from bench.harness.report import Column, at, columns_table, fmt
from bench.harness.results import Result, goal
from bench.harness.scratch import Scratch

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

QUERIES = [  # name, what, the sample table its script draws from
    ("list", "50 conversations by last_message_at", "inbox_samples"),
    ("page", "50 newest messages of a conversation", "inbox_samples"),
    ("deep", "50 messages, deep keyset page", "deep_samples"),
    ("unread", "unread total (sum of unread_count)", "inbox_samples"),
]
KINDS = ("rls", "plain")
MEASURED_STATEMENT = ("-- measured", "select id", "select coalesce")


def measure(ctx: Context) -> Result:
    return {"worlds": {ctx.world.name: measure_queries(ctx, "current") | {"label": ctx.world.label()}}}


def measure_proposal(ctx: Context, step: str) -> Result:
    return measure_queries(ctx, step)


def measure_queries(ctx: Context, variant: str) -> Result:
    """Every query, RLS and plain, at one client, after a warm-up of them all."""
    scratch = ctx.scratch
    samples = {t: int(scratch.scalar(f"select count(*) from bench.{t}")) for t in ("inbox_samples", "deep_samples")}
    median_depth = scratch.scalar("select percentile_disc(0.5) within group (order by depth) from bench.deep_samples")
    scratch.execute("analyze public.whatsapp_messages, public.whatsapp_conversations")
    scratch.checkpoint()
    for name, _, table_name in QUERIES:  # warm caches and plan caches for every query first
        for kind in KINDS:
            pgbench(
                scratch.url,
                f"inbox_{name}_{kind}",
                1,
                ctx.profile.inbox.warm(),
                {"samples": samples[table_name]},
                ctx.work,
            )
    worst = {t: worst_sample(scratch, t) for t in ("inbox_samples", "deep_samples")}
    queries = {name: measure_query(ctx, name, what, samples[t], worst[t]) for name, what, t in QUERIES}
    return rnd({"variant": variant, "samples": samples, "median_deep_page_depth": median_depth, "queries": queries})


def measure_query(ctx: Context, name: str, what: str, samples: int, sample: dict[str, Any]) -> Result:
    runs = {}
    for kind in KINDS:
        run = pgbench(ctx.scratch.url, f"inbox_{name}_{kind}", 1, ctx.profile.inbox, {"samples": samples}, ctx.work)
        runs[kind] = run.as_dict() | {"query_ms": run.statement_ms(MEASURED_STATEMENT)}
    for kind in KINDS:  # after both runs: EXPLAIN ANALYZE warms what it reads
        runs[kind]["explain"] = explain(ctx.scratch, f"inbox_{name}_{kind}", sample, rls=kind == "rls")
    r, p = runs["rls"], runs["plain"]
    log.info(
        "    %-7s rls p50 %.3f p99 %.3f ms | plain p50 %.3f p99 %.3f ms | query %s vs %s ms",
        name,
        r["latency_ms"]["p50"],
        r["latency_ms"]["p99"],
        p["latency_ms"]["p50"],
        p["latency_ms"]["p99"],
        r["query_ms"],
        p["query_ms"],
    )
    return {
        "what": what,
        "rls": r,
        "plain": p,
        "ratio_p50": ratio(r["latency_ms"]["p50"], p["latency_ms"]["p50"]),
        "ratio_p99": ratio(r["latency_ms"]["p99"], p["latency_ms"]["p99"]),
        "ratio_query_mean": ratio(r["query_ms"], p["query_ms"]),
        "seq_scan": r["explain"]["seq_scan"] or p["explain"]["seq_scan"],
    }


def measured_query(script: str) -> tuple[str, list[str]]:
    """The statement after '-- measured query' in a pgbench script, with :vars as $1.. and their names."""
    text = (SQL / f"{script}.sql").read_text()
    body = text.split("-- measured query", 1)[1].split("\n", 1)[1]
    statement = body.split(";", 1)[0].strip()
    names: list[str] = []

    def placeholder(m: re.Match[str]) -> str:
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"

    return re.sub(r"(?<!:):([a-z_]+)", placeholder, statement), names


def explain(scratch: Scratch, script: str, sample: dict[str, Any], rls: bool) -> Result:
    """EXPLAIN (ANALYZE, BUFFERS) of the measured statement, generic and custom plan, as the role pgbench uses."""
    statement, names = measured_query(script)
    out: Result = {"statement": statement, "sample": {k: str(sample[k]) for k in names}}
    args = sql.SQL(", ").join(sql.Literal(str(sample[k])) for k in names)
    execute = sql.SQL("execute bench_q ({})").format(args) if names else sql.SQL("execute bench_q")
    with psycopg.connect(scratch.url, autocommit=True) as conn:
        for mode, key in (("force_generic_plan", "generic"), ("force_custom_plan", "custom")):
            with conn.transaction():
                conn.execute(sql.SQL("set local plan_cache_mode = {}").format(sql.Literal(mode)))
                conn.execute("set local role authenticated" if rls else "set local role postgres")
                conn.execute("select set_config('request.jwt.claims', %s, true)", [sample["claims"]])
                conn.execute(sql.SQL("prepare bench_q as {}").format(sql.SQL(statement)))
                conn.execute(execute)  # warm the buffers the way the measured runs are
                plan = conn.execute(sql.SQL("explain (analyze, buffers) {}").format(execute)).fetchall()
                out[key] = "\n".join(row[0] for row in plan)
                conn.execute("deallocate bench_q")
    out["seq_scan"] = any("Seq Scan" in out[k] for k in ("generic", "custom"))
    return out


def worst_sample(scratch: Scratch, table_name: str) -> dict[str, Any]:
    """The worst-case sample for EXPLAIN: the landlord with most conversations / the deepest page."""
    order = (
        "depth desc"
        if table_name == "deep_samples"
        else "(select count(*) from public.whatsapp_conversations c where c.landlord_id = s.landlord_id) desc, k"
    )
    with psycopg.connect(scratch.url, autocommit=True) as conn:
        cur = conn.execute(f"select * from bench.{table_name} s order by {order} limit 1")
        row = cur.fetchone()
        assert row is not None and cur.description is not None, f"bench.{table_name} is empty"
        return dict(zip([d.name for d in cur.description], row, strict=True))


def goals(result: Result) -> list[Result]:
    queries = (result["worlds"].get("large") or next(iter(result["worlds"].values())))["queries"]
    out = []
    for name, q in queries.items():
        out += [
            goal(f"{name}: p99 under RLS < 5 ms (whole transaction)", q["rls"]["latency_ms"]["p99"], "<", 5.0, "ms"),
            goal(f"{name}: RLS / no-RLS p99 <= 1.5", q["ratio_p99"], "<=", 1.5, "x"),
            goal(f"{name}: RLS / no-RLS query time (mean) <= 1.5", q["ratio_query_mean"], "<=", 1.5, "x"),
            goal(f"{name}: no Seq Scan in EXPLAIN", 0 if not q["seq_scan"] else 1, "==", 0, ""),
        ]
    return out


def plot(result: Result) -> Figure | None:
    """p50 and p99 of every query, RLS and not, per world and proposal step."""
    if not result.get("worlds"):
        return None
    variants = [(f"{wname} world", w) for wname, w in result["worlds"].items()]
    variants += [
        (f"large, {p['name']}", p["result"])
        for p in result.get("proposals", [])
        if p["name"] != "before" and "result" in p
    ]
    names = [q for q, _, _ in QUERIES]
    fig, axes = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    width = 0.8 / (2 * len(variants))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, stat in zip(axes, ("p50", "p99"), strict=True):
        for i, (label, v) in enumerate(variants):
            for j, kind in enumerate(KINDS):
                xs = [k + (2 * i + j) * width for k in range(len(names))]
                ys = [v["queries"][n][kind]["latency_ms"][stat] for n in names]
                ax.bar(
                    xs,
                    ys,
                    width,
                    color=colors[i % len(colors)],
                    hatch="//" if kind == "plain" else None,
                    alpha=0.55 if kind == "plain" else 1.0,
                    label=f"{label}, {'RLS' if kind == 'rls' else 'no RLS (hatched)'}",
                )
        if stat == "p99":
            ax.axhline(5, color="grey", lw=0.8, ls=":")
        ax.set(ylabel=f"{stat} ms (whole transaction)")
    axes[0].set_title("Landlord inbox queries, 1 client")
    axes[1].set_xticks([k + width * (len(variants) - 0.5) for k in range(len(names))], names)
    axes[0].legend(fontsize=7, ncol=2)
    return fig


def query_means(q: Result) -> str:
    return f"{fmt(q['rls']['query_ms'], 3)} / {fmt(q['plain']['query_ms'], 3)}"


QUERY_COLUMNS: list[Column] = [
    ("query", at("what")),
    ("RLS p50 ms", at("rls.latency_ms.p50")),
    ("RLS p99 ms", at("rls.latency_ms.p99")),
    ("no-RLS p50 ms", at("plain.latency_ms.p50")),
    ("no-RLS p99 ms", at("plain.latency_ms.p99")),
    ("p99 ratio", at("ratio_p99")),
    ("query mean ms RLS / no-RLS", query_means),
    ("query ratio", at("ratio_query_mean")),
    ("Seq Scan", lambda q: "yes" if q["seq_scan"] else "none"),
]


def queries_table(variant: Result) -> str:
    return columns_table(QUERY_COLUMNS, variant["queries"].values())


BENCHMARK = Benchmark(
    name="inbox_rls",
    measure=measure,
    worlds=("small", "large"),
    proposals="inbox",
    measure_proposal=measure_proposal,
    goals=goals,
    plot=plot,
    report=lambda r: {"queries_table": queries_table},
)

"""6. Cache question: how much of a routed message's time is the routing lookup (what a cache could save)?
The parts of a call on their own (bench/sql/roundtrip.sql, normalize_phone.sql, routing_lookup.sql,
route_inbound.sql), then auto_explain's durations of the statements inside route_inbound_message."""

from __future__ import annotations

import json
import logging
import random
import re
from typing import TYPE_CHECKING, Any

import psycopg

from bench.harness.benchmark import Benchmark, Context
from bench.harness.numbers import rnd
from bench.harness.pgbench import pgbench
from bench.harness.plots import plt
from bench.harness.report import Column, at, columns_table
from bench.harness.results import Result
from bench.harness.scratch import superuser_url
from bench.harness.worlds import CENTRAL_NUMBER, random_sender, routing_defines

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

PARTS = ("roundtrip", "normalize_phone", "routing_lookup", "route_inbound")
# Statements inside route_inbound_message, by the start of their text (auto_explain's Query Text): prefix, step, level.
STEPS = [
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
    ("select realtime.send", "live inbox broadcast (publish trigger)", 2),
    ("insert into private.phone_preferences", "courtesy / clarification bookkeeping", 1),
    ("select private.queue_system_reply", "system reply queued", 1),
]
OTHER = "other statements"
AUTO_EXPLAIN = [
    "auto_explain.log_min_duration = 0",
    "auto_explain.log_nested_statements = on",
    "auto_explain.log_analyze = off",
    "auto_explain.log_timing = off",
    "client_min_messages = log",
]
NOTICE = re.compile(r"duration: ([0-9.]+) ms\s+plan:\s*Query Text:\s*(.*)", re.DOTALL)
ROUTE = (
    "select public.route_inbound_message(jsonb_build_object('from', %s::text, 'id', %s::text, "
    "'timestamp', extract(epoch from now())::bigint::text, 'type', 'text', "
    "'text', jsonb_build_object('body', 'Hi, the boiler is making a strange noise again.')), "
    "jsonb_build_object('profile', jsonb_build_object('name', 'Tenant ' || %s::text), 'wa_id', %s::text), "
    "%s::jsonb)"
)
METHOD = (
    "auto_explain durations (log_analyze off); level-2 statements run inside the level-1 insert; shares are of the "
    "time spent in SQL statements (level 1), which leaves out plpgsql's own expressions (normalize_phone, JSON "
    "building) and commit; 'the whole call' includes auto_explain's own logging"
)


def measure(ctx: Context) -> Result:
    ctx.scratch.checkpoint()
    parts = {script: measure_part(ctx, script) for script in PARTS}
    floor = parts["roundtrip"]["latency_ms"]["mean"]
    full = parts["route_inbound"]["latency_ms"]["mean"]
    lookup = parts["routing_lookup"]["latency_ms"]["mean"]
    norm = parts["normalize_phone"]["latency_ms"]["mean"]
    work_ms = full - floor
    log.info("    breakdown of route_inbound_message (auto_explain)")
    return rnd(
        {
            "world": ctx.world.name,
            "tenants": ctx.world.tenants,
            "parts": parts,
            "breakdown": breakdown(ctx, ctx.profile.breakdown_calls),
            "full_call_ms": full,
            "roundtrip_ms": floor,
            "lookup_ms_net": lookup - floor,
            "normalize_ms_net": norm - floor,
            "lookup_share_of_call": (lookup - floor) / work_ms if work_ms > 0 else None,
            "lookup_share_raw": lookup / full if full else None,
            "normalize_share_of_call": (norm - floor) / work_ms if work_ms > 0 else None,
        }
    )


def measure_part(ctx: Context, script: str) -> Result:
    url, defines = ctx.scratch.url, routing_defines(ctx.world)
    pgbench(url, script, 1, ctx.profile.lookup.warm(), defines, ctx.work)
    run = pgbench(url, script, 1, ctx.profile.lookup, defines, ctx.work)
    log.info("    %-16s mean %.3f ms p50 %.3f ms", script, run.latency_ms["mean"], run.latency_ms["p50"])
    return run.as_dict()


def step_of(query_text: str) -> str:
    text = " ".join(query_text.split()).lower()
    return next((label for prefix, label, _ in STEPS if text.startswith(" ".join(prefix.split()).lower())), OTHER)


def breakdown(ctx: Context, calls: int) -> Result:
    """Where a routed message's time goes: auto_explain durations of the statements inside
    route_inbound_message (timing only, no ANALYZE), summed per step over `calls` messages."""
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}

    def on_notice(diag: Any) -> None:
        if m := NOTICE.search(diag.message_primary or ""):
            step = step_of(m.group(2))
            totals[step] = totals.get(step, 0.0) + float(m.group(1))
            counts[step] = counts.get(step, 0) + 1

    rng = random.Random(7)
    senders = [random_sender(rng, ctx.world.tenants) for _ in range(calls)]
    metadata = json.dumps(CENTRAL_NUMBER)
    # Profiling, not project behaviour: LOAD 'auto_explain' and its settings need a superuser, which
    # postgres is not (as on hosted), so this one session is the platform's superuser's.
    with psycopg.connect(superuser_url(ctx.scratch.url), autocommit=True) as conn:
        conn.execute("load 'auto_explain'")
        for setting in AUTO_EXPLAIN:
            conn.execute(f"set {setting}")
        for i, (phone, t) in enumerate(senders[:20]):  # warm the plan caches first
            conn.execute(ROUTE, [phone, f"wamid.HBgMWARM{i:08d}{rng.getrandbits(40):010X}", t, phone, metadata])
        conn.add_notice_handler(on_notice)
        for i, (phone, t) in enumerate(senders):
            conn.execute(ROUTE, [phone, f"wamid.HBgMBRK{i:08d}{rng.getrandbits(40):010X}", t, phone, metadata])
        conn.remove_notice_handler(on_notice)
    return rnd(breakdown_rows(totals, counts, calls), 4)


def breakdown_rows(totals: dict[str, float], counts: dict[str, int], calls: int) -> Result:
    levels = {label: level for _, label, level in STEPS} | {OTHER: 1}
    rows: list[Result] = [
        {
            "step": label,
            "level": level,
            "ms_per_message": totals[label] / calls,
            "statements_per_message": counts[label] / calls,
        }
        for label, level in levels.items()
        if label in totals
    ]
    statements = sum(r["ms_per_message"] for r in rows if r["level"] == 1)
    for r in rows:
        r["share_of_statements"] = r["ms_per_message"] / statements if statements else None
    return {"calls": calls, "statements_ms_per_message": statements, "method": METHOD, "steps": rows}


def goals(result: Result) -> list[Result]:
    return []  # a question, not a goal: the report answers it


def plot(result: Result) -> Figure | None:
    """One bar: the mean call split into round trip, normalize_phone, the lookup and the rest."""
    if not result.get("parts"):
        return None
    floor = result["roundtrip_ms"]
    norm, lookup = max(0, result["normalize_ms_net"]), max(0, result["lookup_ms_net"])
    pieces = [
        ("round trip + commit", floor),
        ("normalize_phone", norm),
        ("routing lookup", lookup),
        ("rest: insert, conversation, notification, WAL", max(0, result["full_call_ms"] - floor - norm - lookup)),
    ]
    fig, ax = plt.subplots(figsize=(9, 2.8))
    left = 0.0
    for label, v in pieces:
        ax.barh([0], [v], left=left, label=f"{label} {v:.3f} ms")
        left += v
    ax.set_yticks([])
    ax.set(xlabel="ms per route_inbound_message call (1 client, mean)", title="Where a routed message's time goes")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=2)
    return fig


PART_COLUMNS: list[Column] = [
    ("call (1 client)", at("script")),
    ("mean ms", at("latency_ms.mean")),
    ("p50 ms", at("latency_ms.p50")),
    ("p99 ms", at("latency_ms.p99")),
]
STEP_COLUMNS: list[Column] = [
    ("step", lambda x: "&nbsp;" * 4 * x["level"] + x["step"]),
    ("ms per message", at("ms_per_message")),
    ("share of statement time", lambda x: f"{100 * x['share_of_statements']:.1f}%" if x["level"] else ""),
]


def parts_table(result: Result) -> str:
    return columns_table(PART_COLUMNS, result["parts"].values())


def steps_table(steps: list[Result]) -> str:
    return columns_table(STEP_COLUMNS, steps)


BENCHMARK = Benchmark(
    name="cache_question",
    measure=measure,
    worlds=("large",),
    goals=goals,
    plot=plot,
    report=lambda r: {"parts_table": parts_table, "steps_table": steps_table},
)

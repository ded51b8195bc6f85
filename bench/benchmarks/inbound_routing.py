"""1. Inbound routing: public.route_inbound_message against the floor of storing one message durably
(bench/sql/baseline_insert.sql), back to back at each client count: mixed traffic as it arrives
(bench/sql/route_inbound.sql: known and unknown senders, shared phones, landlords not opted in), and in
the large world also the two cases the goals name: a message into an existing conversation
(route_existing.sql) and the first message of a new one (route_new.sql), at 1 and 2 clients."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import matplotlib.ticker
import psycopg
from psycopg.rows import dict_row

from bench.harness.benchmark import Benchmark, Context
from bench.harness.numbers import human, ratio, rnd
from bench.harness.pgbench import pgbench
from bench.harness.plots import plt
from bench.harness.profile import Budget
from bench.harness.report import Column, at, columns_table, table
from bench.harness.results import Result, goal
from bench.harness.worlds import routing_defines

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

ROUTED = "from public.whatsapp_messages m where m.created_at >= %s and m.direction = 'incoming'"
# What a routed message adds on disk (tables, their indexes and TOAST): the inbox, what routing kept
# beside it, and the broadcast (hosted Realtime drops realtime.messages partitions after a few days).
STORED_BYTES = """
select pg_total_relation_size('public.whatsapp_messages') as messages,
       pg_total_relation_size('private.whatsapp_message_details') as details,
       pg_total_relation_size('public.whatsapp_conversations') + pg_total_relation_size('public.whatsapp_tenant_links')
         as conversations,
       (select coalesce(sum(pg_total_relation_size(i.inhrelid)), 0) from pg_inherits i
        where i.inhparent = 'realtime.messages'::regclass) as broadcasts
"""
GOAL_MSG_S = 3000
SPLIT_WORLD = "large"  # where the existing/new runs happen (its pool of new phones is ten times the small one's)
SPLIT_CLIENTS = (1, 2)
CASES = {"existing": ("route_existing", 0.5), "new": ("route_new", 0.35)}  # script, goal (x baseline)


def measure(ctx: Context) -> Result:
    return {"clients": list(ctx.profile.clients), "worlds": {ctx.world.name: measure_routing(ctx)}}


def measure_proposal(ctx: Context, step: str) -> Result:
    """1 and 2 clients (the goals'), with the baseline row width of the main run."""
    pad = ctx.results["inbound_routing"]["worlds"][ctx.world.name]["baseline_pad_bytes"]
    clients = SPLIT_CLIENTS
    return measure_routing(ctx, clients, pad, ctx.profile.proposal_route)


def baseline_pad(ctx: Context) -> int:
    """Warm up routing, then size the baseline row like a routed whatsapp_messages row: the padding it needs."""
    scratch, world, warm = ctx.scratch, ctx.world, ctx.profile.route.warm()
    scratch.execute(
        "create table if not exists bench.baseline_insert "
        "(wamid text primary key, raw jsonb not null, pad text not null)"
    )
    since = scratch.scalar("select now()")
    pgbench(scratch.url, "route_inbound", 2, warm, routing_defines(world), ctx.work)
    routed_width = float(scratch.scalar(f"select avg(pg_column_size(m.*)) {ROUTED}", [since]))
    pgbench(scratch.url, "baseline_insert", 2, warm, routing_defines(world, 0), ctx.work)
    base_width = float(scratch.scalar("select avg(pg_column_size(b.*)) from bench.baseline_insert b"))
    pad = max(0, round(routed_width - base_width))
    scratch.execute("truncate bench.baseline_insert")
    log.info("    routed row %.0f B, baseline row %.0f B -> pad %d B", routed_width, base_width, pad)
    return pad


def measure_routing(
    ctx: Context, clients: tuple[int, ...] | None = None, pad: int | None = None, budget: Budget | None = None
) -> Result:
    scratch, world = ctx.scratch, ctx.world
    budget = budget or ctx.profile.route
    if pad is None:
        pad = baseline_pad(ctx)
    else:
        pgbench(scratch.url, "route_inbound", 2, ctx.profile.route.warm(), routing_defines(world), ctx.work)
    scratch.execute("vacuum analyze public.whatsapp_messages, public.whatsapp_conversations, realtime.messages")
    scratch.checkpoint()
    since = scratch.scalar("select now()")
    before = stored_bytes(ctx)
    runs = [measure_clients(ctx, c, pad, budget) for c in clients or ctx.profile.clients]
    after = stored_bytes(ctx)
    outcome = dict(scratch.execute(f"select m.routing_status, count(*) {ROUTED} group by 1", [since]))
    total = sum(outcome.values()) or 1
    return {
        "world": world.name,
        "tenants": world.tenants,
        "baseline_pad_bytes": pad,
        "routed_row_bytes": scratch.scalar(f"select avg(pg_column_size(m.*))::int {ROUTED}", [since]),
        "routed_messages": total,
        "routing_outcomes": {k: round(v / total, 4) for k, v in sorted(outcome.items())},
        # bytes on disk per routed message during the measured runs (growth / messages routed)
        "bytes_per_message": {k: round((after[k] - before[k]) / total) for k in before},
        "runs": runs,
    }


def stored_bytes(ctx: Context) -> dict[str, int]:
    with psycopg.connect(ctx.scratch.url, autocommit=True, row_factory=dict_row) as conn:
        row = conn.execute(STORED_BYTES).fetchone()
    return {k: int(v) for k, v in (row or {}).items()}


def measure_clients(ctx: Context, clients: int, pad: int, budget: Budget) -> Result:
    url, world = ctx.scratch.url, ctx.world
    base = pgbench(url, "baseline_insert", clients, budget, routing_defines(world, pad), ctx.work)
    cases = measure_cases(ctx, clients, budget, base.tps)
    route = pgbench(url, "route_inbound", clients, budget, routing_defines(world), ctx.work)
    log.info(
        "    %d client(s): routing %7.0f/s p50 %.2f p99 %.2f ms | baseline %7.0f/s p50 %.2f p99 %.2f ms | ratio %.2f",
        clients,
        route.tps,
        route.latency_ms["p50"],
        route.latency_ms["p99"],
        base.tps,
        base.latency_ms["p50"],
        base.latency_ms["p99"],
        ratio(route.tps, base.tps),
    )
    return {
        "clients": clients,
        "baseline": base.as_dict(),
        "routing": route.as_dict(),
        "ratio_tps": rnd(ratio(route.tps, base.tps)),
        **cases,
    }


def measure_cases(ctx: Context, clients: int, budget: Budget, base_tps: float) -> Result:
    """In the large world at 1 and 2 clients: a message into an existing conversation and the first
    message of a new one, right after the baseline they are compared with."""
    if ctx.world.name != SPLIT_WORLD or clients not in SPLIT_CLIENTS:
        return {}
    existing = int(ctx.scratch.scalar("select value from bench.params where name = 'existing_phones'"))
    out: Result = {}
    for case, (script, _) in CASES.items():
        run = pgbench(ctx.scratch.url, script, clients, budget, {"existing": existing}, ctx.work)
        out[case] = run.as_dict() | {"ratio_tps": rnd(ratio(run.tps, base_tps))}
        log.info(
            "    %d client(s): %-8s %7.0f/s p50 %.2f p99 %.2f ms | ratio %.2f",
            clients,
            case,
            run.tps,
            run.latency_ms["p50"],
            run.latency_ms["p99"],
            ratio(run.tps, base_tps),
        )
    return out


def goals(result: Result) -> list[Result]:
    big = result["worlds"].get("large") or next(iter(result["worlds"].values()))
    top = max(big["runs"], key=lambda x: x["routing"]["tps"])
    labels = {"existing": "a message into an existing conversation", "new": "the first message of a new conversation"}
    out = [
        goal(
            f"{labels[case]} >= {target:.2f}x the single-insert floor ({c['clients']} client(s))",
            c[case]["ratio_tps"],
            ">=",
            target,
            "x",
        )
        for case, (_, target) in CASES.items()
        for c in big["runs"]
        if case in c
    ]
    best = "routing >= 3,000 messages/s with up to 8 clients (best, mixed traffic)"
    return [*out, goal(best, top["routing"]["tps"], ">=", GOAL_MSG_S, "msg/s")]


def plot(result: Result) -> Figure | None:
    """Throughput and latency by clients per world; the proposals' steps beside them."""
    if not result.get("worlds"):
        return None
    steps = [p for p in (result.get("proposals") or []) if "result" in p]
    fig, axes = plt.subplots(1, 3 if steps else 2, figsize=(16 if steps else 11, 4.2))
    throughput, latency = axes[0], axes[1]
    if steps:
        plot_proposals(axes[2], steps)
    for w in result["worlds"].values():
        cs = [x["clients"] for x in w["runs"]]
        label = f"{human(w['tenants'])} tenants"
        throughput.plot(cs, [x["routing"]["tps"] for x in w["runs"]], "o-", label=f"route_inbound_message, {label}")
        throughput.plot(cs, [x["baseline"]["tps"] for x in w["runs"]], "s--", label=f"baseline insert, {label}")
        latency.plot(cs, [x["routing"]["latency_ms"]["p99"] for x in w["runs"]], "o-", label=f"routing p99, {label}")
        latency.plot(cs, [x["routing"]["latency_ms"]["p50"] for x in w["runs"]], "^:", label=f"routing p50, {label}")
    throughput.axhline(GOAL_MSG_S, color="grey", lw=0.8, ls=":")
    throughput.text(1, GOAL_MSG_S, " goal 3,000/s", va="bottom", fontsize=8, color="grey")
    for ax in (throughput, latency):
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(result["clients"]), [str(c) for c in result["clients"]])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.legend(fontsize=7)
    throughput.set(xlabel="pgbench clients", ylabel="messages / s", title="Inbound routing throughput")
    latency.set(xlabel="pgbench clients", ylabel="ms", title="Routing latency")
    return fig


def plot_proposals(ax: Axes, steps: list[Result]) -> None:
    labels = [p["name"].replace("routing_", "") for p in steps]
    most = max(x["clients"] for x in steps[0]["result"]["runs"])
    for k, (clients, color) in enumerate(((1, "tab:blue"), (most, "tab:orange"))):
        runs = [next(x for x in p["result"]["runs"] if x["clients"] == clients) for p in steps]
        xs = [i + (k - 0.5) * 0.4 for i in range(len(steps))]
        ax.bar(xs, [x["routing"]["tps"] for x in runs], 0.4, color=color, label=f"routing, {clients} client(s)")
        ax.plot(xs, [x["baseline"]["tps"] for x in runs], "k_", markersize=18, label="baseline" if k == 0 else None)
    ax.set_xticks(range(len(steps)), labels, fontsize=7)
    ax.set(ylabel="messages / s", title="Proposals (cumulative, large world)")
    ax.legend(fontsize=7)


def outcomes(world: Result) -> str:
    """'82.2% delivered, 8.8% landlord_disabled, ...', most frequent first."""
    shares = sorted(world["routing_outcomes"].items(), key=lambda x: -x[1])
    return ", ".join(f"{100 * v:.1f}% {k}" for k, v in shares)


RUN_COLUMNS: list[Column] = [
    ("clients", at("clients")),
    ("routing msg/s", at("routing.tps")),
    ("p50 ms", at("routing.latency_ms.p50")),
    ("p99 ms", at("routing.latency_ms.p99")),
    ("baseline rows/s", at("baseline.tps")),
    ("p50 ms", at("baseline.latency_ms.p50")),
    ("p99 ms", at("baseline.latency_ms.p99")),
    ("routing / baseline", at("ratio_tps")),
]


def runs_table(world: Result) -> str:
    return columns_table(RUN_COLUMNS, world["runs"])


CASE_COLUMNS: list[Column] = [
    ("clients", at("clients")),
    ("baseline rows/s", at("baseline.tps")),
    ("existing conversation msg/s", at("existing.tps")),
    ("p99 ms", at("existing.latency_ms.p99")),
    ("existing / baseline", at("existing.ratio_tps")),
    ("new conversation msg/s", at("new.tps")),
    ("p99 ms", at("new.latency_ms.p99")),
    ("new / baseline", at("new.ratio_tps")),
]


def cases_table(world: Result) -> str:
    """The existing/new runs of a world ('' where it has none)."""
    rows = [x for x in world["runs"] if "existing" in x]
    return columns_table(CASE_COLUMNS, rows) if rows else ""


def proposals_table(steps: list[Result]) -> str:
    rows: list[list[object]] = []
    for p in steps:
        if "result" not in p:
            rows.append([p["name"], "does not apply", "", "", "", "", "", "", ""])
            continue
        rows += [
            [
                p["name"],
                x["clients"],
                x["routing"]["tps"],
                x["routing"]["latency_ms"]["p50"],
                x["routing"]["latency_ms"]["p99"],
                x["baseline"]["tps"],
                x["ratio_tps"],
                x.get("existing", {}).get("ratio_tps", ""),
                x.get("new", {}).get("ratio_tps", ""),
            ]
            for x in p["result"]["runs"]
        ]
    header = [
        "step",
        "clients",
        "mixed msg/s",
        "p50 ms",
        "p99 ms",
        "baseline rows/s",
        "mixed / baseline",
        "existing / baseline",
        "new / baseline",
    ]
    return table(header, rows)


BENCHMARK = Benchmark(
    name="inbound_routing",
    measure=measure,
    worlds=("small", "large"),
    proposals="routing",
    measure_proposal=measure_proposal,
    goals=goals,
    plot=plot,
    report=lambda r: {
        "outcomes": outcomes,
        "runs_table": runs_table,
        "cases_table": cases_table,
        "proposals_table": proposals_table,
    },
)

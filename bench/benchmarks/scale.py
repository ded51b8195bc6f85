"""5. Scale behaviour: how the costs measured by inbound_routing and inbox_rls grow from the 1x world
to the 10x world (nothing is measured here; it reads their results)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.harness.benchmark import Benchmark, Context
from bench.harness.numbers import ratio, rnd
from bench.harness.plots import plt
from bench.harness.report import Column, at, columns_table
from bench.harness.results import Result, goal

if TYPE_CHECKING:
    from matplotlib.figure import Figure

GROWTH_GOAL = 1.5


def measure(ctx: Context) -> Result:
    rows = routing_rows(ctx.results.get("inbound_routing")) + inbox_rows(ctx.results.get("inbox_rls"))
    for row in rows:
        row["growth"] = ratio(row["large"], row["small"])
    return {"rows": rnd(rows), "worlds": ctx.worlds}


def both_worlds(result: Result | None) -> tuple[Result, Result] | None:
    worlds = (result or {}).get("worlds", {})
    return (worlds["small"], worlds["large"]) if {"small", "large"} <= set(worlds) else None


def routing_rows(routing: Result | None) -> list[Result]:
    """Time per message (1 / throughput) and p99, at 1 and at the most clients."""
    if (worlds := both_worlds(routing)) is None:
        return []
    small, large = worlds
    rows = []
    for c in (1, max(x["clients"] for x in small["runs"])):
        s = next(x for x in small["runs"] if x["clients"] == c)["routing"]
        lg = next(x for x in large["runs"] if x["clients"] == c)["routing"]
        rows += [
            {
                "metric": f"routing ms per message, {c} client(s) (1/throughput)",
                "small": 1000.0 * c / s["tps"],
                "large": 1000.0 * c / lg["tps"],
            },
            {
                "metric": f"routing p99 ms, {c} client(s)",
                "small": s["latency_ms"]["p99"],
                "large": lg["latency_ms"]["p99"],
            },
        ]
    return rows


def inbox_rows(inbox: Result | None) -> list[Result]:
    """p50, p99 and the query's mean of every inbox query under RLS."""
    if (worlds := both_worlds(inbox)) is None:
        return []
    small, large = worlds
    rows = []
    for q in small["queries"]:
        s, lg = small["queries"][q]["rls"], large["queries"][q]["rls"]
        rows += [
            {"metric": f"inbox {q} (RLS) {stat} ms", "small": s["latency_ms"][stat], "large": lg["latency_ms"][stat]}
            for stat in ("p50", "p99")
        ]
        rows.append({"metric": f"inbox {q} (RLS) query mean ms", "small": s["query_ms"], "large": lg["query_ms"]})
    return rows


def goals(result: Result) -> list[Result]:
    """Growth of p50s and means; p99 rows are in the table but too noisy here for a verdict."""
    return [
        goal(f"{x['metric']}: growth <= 1.5", x["growth"], "<=", GROWTH_GOAL, "x")
        for x in result["rows"]
        if "p99" not in x["metric"]
    ]


def plot(result: Result) -> Figure | None:
    if not result.get("rows"):
        return None
    rows = result["rows"]
    growth = [x["growth"] or 0 for x in rows]
    fig, ax = plt.subplots(figsize=(10, 4.2))
    ax.barh(range(len(rows)), growth, color=["tab:red" if g > GROWTH_GOAL else "tab:green" for g in growth])
    ax.axvline(GROWTH_GOAL, color="grey", lw=0.8, ls=":")
    ax.set_yticks(range(len(rows)), [x["metric"] for x in rows], fontsize=7)
    ax.set(xlabel="cost growth at 10x the data (1.0 = flat)", title="Scale behaviour")
    ax.invert_yaxis()
    return fig


def rows_table(result: Result) -> str:
    columns: list[Column] = [
        ("metric", at("metric")),
        ("1x", at("small")),
        ("10x", at("large")),
        ("growth", at("growth")),
    ]
    return columns_table(columns, result["rows"])


BENCHMARK = Benchmark(
    name="scale",
    measure=measure,
    requires=("inbound_routing", "inbox_rls"),
    goals=goals,
    plot=plot,
    report=lambda r: {"rows_table": rows_table},
)

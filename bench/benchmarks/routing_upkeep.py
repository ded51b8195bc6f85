"""2. Routing upkeep: what keeping private.tenant_landlord_routing exact costs each kind of change
(bench/sql/upkeep_*.sql) with the routing triggers, without them, and with the original design,
a materialized view refreshed per change."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NamedTuple

from bench.harness.benchmark import Benchmark, Context
from bench.harness.numbers import human, ratio, rnd
from bench.harness.pgbench import Run, pgbench
from bench.harness.plots import plt
from bench.harness.report import Column, at, columns_table, table
from bench.harness.results import Result, goal
from bench.harness.scratch import Scratch

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

ROUTING_TRIGGERS = [
    ("public.tenants", "tenants_routing"),
    ("public.leases", "leases_routing"),
    ("public.properties", "properties_routing_moves"),
]
ROUTING_DIFF = """
select (select count(*) from (table private.tenant_landlord_routing except all
                               select * from private.tenant_landlord_routing_source) a)
     + (select count(*) from (select * from private.tenant_landlord_routing_source except all
                               table private.tenant_landlord_routing) b)
"""
MV = "bench.tenant_landlord_routing_mv"
TOUCH_A_TENANT = "update public.tenants set name = name || '.' where id = bench.uid(2, 1)"


class Change(NamedTuple):
    key: str
    what: str
    script: str  # bench/sql/<script>.sql
    defines: dict[str, Any]


def changes(ctx: Context) -> list[Change]:
    params = dict(ctx.scratch.execute("select name, value from bench.params"))
    agencies, landlords, tenants = int(params["agencies"]), int(params["landlords"]), {"tenants": ctx.world.tenants}
    return [
        Change("tenant_phone", "a tenant's phone number changes", "upkeep_tenant_phone", tenants),
        Change("tenant_name", "a tenant's name changes", "upkeep_tenant_name", tenants),
        Change("lease_status", "a lease ends or becomes active", "upkeep_lease_status", tenants),
        Change(
            "opt_in_small",
            "a landlord (~10 tenants) turns WhatsApp on/off",
            "upkeep_opt_in",
            {"lo": agencies + 1, "hi": landlords},
        ),
        Change(
            "opt_in_agency",
            "an agency (~1,000 tenants) turns WhatsApp on/off",
            "upkeep_opt_in",
            {"lo": 1, "hi": agencies},
        ),
    ]


def run_change(ctx: Context, change: Change) -> Run:
    """One kind of change at one client, after a warm-up."""
    pgbench(ctx.scratch.url, change.script, 1, ctx.profile.upkeep.warm(), change.defines, ctx.work)
    return pgbench(ctx.scratch.url, change.script, 1, ctx.profile.upkeep, change.defines, ctx.work)


def compared(change: Change, triggers: Run, no_triggers: Result) -> Result:
    ratio_mean = ratio(triggers.latency_ms["mean"], no_triggers["latency_ms"]["mean"])
    log.info(
        "    %-14s triggers %.3f ms | none %.3f ms | x%.2f",
        change.key,
        triggers.latency_ms["mean"],
        no_triggers["latency_ms"]["mean"],
        ratio_mean or 0,
    )
    return {"what": change.what, "triggers": triggers.as_dict(), "no_triggers": no_triggers, "ratio_mean": ratio_mean}


def measure(ctx: Context) -> Result:
    """Each kind of change with the routing triggers, then without them, then the materialized view."""
    kinds = changes(ctx)
    ctx.scratch.checkpoint()
    results = {}
    for change in kinds:
        triggers = run_change(ctx, change)
        set_routing_triggers(ctx.scratch, False)
        try:
            no_triggers = run_change(ctx, change)
        finally:
            set_routing_triggers(ctx.scratch, True)
        results[change.key] = compared(change, triggers, no_triggers.as_dict())
    log.info("    repairing the routing table after the runs without triggers")
    ctx.scratch.execute("select public.refresh_tenant_landlord_routing()")
    ctx.scratch.execute("analyze private.tenant_landlord_routing")
    exact = still_exact(ctx, kinds)
    rows = int(ctx.scratch.scalar("select count(*) from private.tenant_landlord_routing"))
    mv = materialized_view(ctx, rows)
    for r in results.values():
        add_mv_comparison(r, mv)
    return rnd(
        {
            "world": ctx.world.name,
            "tenants": ctx.world.tenants,
            "routing_rows": rows,
            "changes": results,
            "routing_table_exact_after_changes": exact,
            "materialized_view": mv,
        }
    )


def measure_proposal(ctx: Context, step: str) -> Result:
    """With triggers only, against the runs without triggers of the main measurement."""
    kinds = changes(ctx)
    without = ctx.results["routing_upkeep"]["changes"]
    ctx.scratch.checkpoint()
    results = {c.key: compared(c, run_change(ctx, c), without[c.key]["no_triggers"]) for c in kinds}
    exact = still_exact(ctx, kinds)
    return rnd(
        {
            "world": ctx.world.name,
            "tenants": ctx.world.tenants,
            "changes": results,
            "routing_table_exact_after_changes": exact,
        }
    )


def still_exact(ctx: Context, kinds: list[Change]) -> bool:
    """Whether the triggers kept the table exact, checked after a last burst of every change with triggers on."""
    for change in kinds:
        pgbench(ctx.scratch.url, change.script, 2, ctx.profile.upkeep.warm(), change.defines, ctx.work)
    exact = bool(ctx.scratch.scalar(ROUTING_DIFF) == 0)
    log.info("    routing table equals its defining query after the changes: %s", exact)
    return exact


def set_routing_triggers(scratch: Scratch, enabled: bool) -> None:
    verb = "enable" if enabled else "disable"
    for table_name, trigger in ROUTING_TRIGGERS:
        scratch.execute(f"alter table {table_name} {verb} trigger {trigger}")


def materialized_view(ctx: Context, rows: int) -> Result:
    """The original design: the routing table as a materialized view, refreshed after a change."""
    log.info("    the original design: a materialized view refreshed per change")
    scratch, profile = ctx.scratch, ctx.profile
    create_s = scratch.timed(f"create materialized view {MV} as select * from private.tenant_landlord_routing_source")
    index_s = scratch.timed(f"create unique index on {MV} (lease_id)")
    index_s += scratch.timed(f"create index on {MV} (tenant_phone)")
    refresh = [refresh_after_change(scratch, False) for _ in range(profile.mv_refreshes)]
    concurrently = [refresh_after_change(scratch, True) for _ in range(profile.mv_concurrent_refreshes)]
    scratch.execute(f"drop materialized view {MV}")
    refresh_ms = 1000 * sum(refresh) / len(refresh)
    conc_ms = 1000 * sum(concurrently) / len(concurrently) if concurrently else None
    log.info("    refresh %.0f ms, concurrently %s ms (%d rows)", refresh_ms, conc_ms and round(conc_ms), rows)
    return {
        "create_s": create_s,
        "index_s": index_s,
        "refresh_ms": [1000 * x for x in refresh],
        "refresh_mean_ms": refresh_ms,
        "refresh_concurrently_ms": [1000 * x for x in concurrently],
        "refresh_concurrently_mean_ms": conc_ms,
    }


def refresh_after_change(scratch: Scratch, concurrently: bool) -> float:
    """Seconds a refresh takes after one tenant's name changed."""
    scratch.execute(TOUCH_A_TENANT)
    return scratch.timed(f"refresh materialized view {'concurrently ' if concurrently else ''}{MV}")


def add_mv_comparison(r: Result, mv: Result) -> None:
    """A change's cost with the view: the change itself plus a refresh, against the triggers."""
    without, triggers = r["no_triggers"]["latency_ms"]["mean"], r["triggers"]["latency_ms"]["mean"]
    r["mv_refresh_per_change_ms"] = without + mv["refresh_mean_ms"]
    r["ratio_mv_vs_triggers"] = ratio(r["mv_refresh_per_change_ms"], triggers)
    if mv["refresh_concurrently_mean_ms"] is not None:
        r["ratio_mv_concurrently_vs_triggers"] = ratio(without + mv["refresh_concurrently_mean_ms"], triggers)


def goals(result: Result) -> list[Result]:
    return [
        goal(f"{k}: triggers / no triggers <= 2", c["ratio_mean"], "<=", 2.0, "x") for k, c in result["changes"].items()
    ]


def plot(result: Result) -> Figure | None:
    """Per kind of change: no triggers, triggers, a refresh of the materialized view (log scale)."""
    if not result.get("changes"):
        return None
    changes_ = result["changes"]
    keys = list(changes_)
    series = [
        ("no triggers", [changes_[k]["no_triggers"]["latency_ms"]["mean"] for k in keys]),
        ("incremental triggers", [changes_[k]["triggers"]["latency_ms"]["mean"] for k in keys]),
        ("REFRESH MATERIALIZED VIEW per change", [changes_[k]["mv_refresh_per_change_ms"] for k in keys]),
    ]
    fig, ax = plt.subplots(figsize=(10, 4.2))
    for i, (label, ys) in enumerate(series):
        ax.bar([k + (i - 1) * 0.27 for k in range(len(keys))], ys, 0.27, label=label)
    ax.set_yscale("log")
    ax.set_xticks(range(len(keys)), keys)
    ax.set(ylabel="ms per change (log)", title=f"Routing upkeep at {human(result['tenants'])} tenants")
    ax.legend(fontsize=8)
    return fig


CHANGE_COLUMNS: list[Column] = [
    ("change", at("what")),
    ("no triggers ms", at("no_triggers.latency_ms.mean")),
    ("triggers ms", at("triggers.latency_ms.mean")),
    ("p99 ms", at("triggers.latency_ms.p99")),
    ("triggers / none", at("ratio_mean")),
    ("MV refresh per change ms", at("mv_refresh_per_change_ms")),
    ("MV / triggers", at("ratio_mv_vs_triggers")),
    ("MV concurrently / triggers", lambda c: c.get("ratio_mv_concurrently_vs_triggers")),
]


def changes_table(result: Result) -> str:
    return columns_table(CHANGE_COLUMNS, result["changes"].values())


def proposals_table(steps: list[Result]) -> str:
    rows: list[list[Any]] = []
    for p in steps:
        if "result" not in p:
            rows.append([p["name"], "does not apply", "", "", ""])
            continue
        rows += [
            [
                p["name"],
                c["what"],
                c["triggers"]["latency_ms"]["mean"],
                c["triggers"]["latency_ms"]["p99"],
                c["ratio_mean"],
            ]
            for c in p["result"]["changes"].values()
        ]
        rows.append([p["name"], "routing table still exact", p["result"]["routing_table_exact_after_changes"], "", ""])
    return table(["step", "change", "triggers ms", "p99 ms", "triggers / none"], rows)


BENCHMARK = Benchmark(
    name="routing_upkeep",
    measure=measure,
    worlds=("large",),
    proposals="upkeep",
    measure_proposal=measure_proposal,
    goals=goals,
    plot=plot,
    report=lambda r: {"changes_table": changes_table, "proposals_table": proposals_table},
)

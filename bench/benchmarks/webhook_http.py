"""4. Webhook over HTTP: the gunicorn service (app.service:create_app()) against the same database work without
HTTP (public.ingest_whatsapp_webhook called by pgbench with as many clients as the service has workers,
bench/sql/ingest_webhook.sql), and against a bare Flask endpoint that only checks the signature
(bench/bare_app.py, a reference line); wrk (bench/webhook.lua) posts signed webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from bench.harness.benchmark import Benchmark, Context
from bench.harness.http import Gunicorn, wrk
from bench.harness.numbers import ratio, rnd
from bench.harness.paths import BENCH, ROOT, SQL
from bench.harness.pgbench import pgbench
from bench.harness.plots import plt
from bench.harness.profile import Budget, World
from bench.harness.report import Column, at, columns_table
from bench.harness.results import Result, goal
from bench.harness.scratch import psql_file
from bench.harness.worlds import CENTRAL_NUMBER, CENTRAL_PHONE_NUMBER_ID, random_sender, routing_defines

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

APP_SECRET = "bench-app-secret"
LUA = BENCH / "webhook.lua"
WEBHOOK_PATH = "/webhooks/whatsapp"
MESSAGE_BODIES = [
    "Hi, the boiler is making a strange noise again.",
    "Rent sent this morning, thanks!",
    "Can someone come and look at the leaking tap in the kitchen? It has been dripping since Sunday.",
    "Ok",
    "What day is the inspection?",
    "The front door lock is sticking, could you send someone this week please?",
    "Thanks, see you then",
    "Is it ok if my sister stays for two weeks in March?",
]
STORED = "select count(*) from public.whatsapp_messages m where m.created_at >= %s and m.direction = 'incoming'"


class App(NamedTuple):
    target: str  # gunicorn's app argument
    label: str
    ready_path: str  # polled until its status satisfies ready
    ready: Callable[[int], bool]


BARE = App("bench.bare_app:create_app()", "bare", WEBHOOK_PATH, lambda s: s == 405)
SERVICE = App("app.service:create_app()", "service", "/healthz", lambda s: s == 200)


def measure(ctx: Context) -> Result:
    """The service and the bare endpoint at each worker count."""
    if (blocked := blocked_reason()) is not None:
        return {"status": "blocked", "reason": blocked}
    runs = []
    for tag, (workers, app) in enumerate(pairs_to_run(ctx), start=1):
        if app is SERVICE:  # the database work alone, just before the service does it over HTTP
            runs.append(measure_direct(ctx, workers))
            runs.append(measure_direct_statuses(ctx, workers))
        runs.append(measure_app(ctx, app, workers, tag))
    return summary(ctx, runs)


def measure_direct_statuses(ctx: Context, clients: int) -> Result:
    """Status webhooks (sent, delivered, read of replies) straight to ingest_whatsapp_webhook, as
    measure_direct does messages: what the capacity model (docs/scaling.md) charges per status."""
    targets = 60_000 if ctx.profile.mode == "full" else 2_000  # 3 statuses each: more than a run takes
    tag = f"{clients}x{int(time.time())}"
    psql_file(ctx.scratch.url, SQL / "status_targets.sql", {"n": targets, "tag": tag}, quiet=True)
    return direct_run(ctx, "direct_status", "ingest_status", clients, {})


def measure_direct(ctx: Context, clients: int) -> Result:
    """ingest_whatsapp_webhook with the body the service receives, `clients` pgbench clients (one per
    gunicorn worker: the service's concurrency at the database), as long as one wrk run."""
    return direct_run(ctx, "direct", "ingest_webhook", clients, routing_defines(ctx.world))


def direct_run(ctx: Context, label: str, script: str, clients: int, defines: dict[str, object]) -> Result:
    """One pgbench run of `script` after a warm-up, shaped like a wrk run of the service (runs_table)."""
    budget = Budget(seconds=ctx.profile.http_s) if ctx.profile.mode == "full" else Budget(transactions=200)
    pgbench(ctx.scratch.url, script, clients, budget.warm(), defines, ctx.work)
    run = pgbench(ctx.scratch.url, script, clients, budget, defines, ctx.work)
    log.info(
        "    %-13s %d clients: %7.0f calls/s, p50 %.2f p99 %.2f ms",
        label,
        clients,
        run.tps,
        run.latency_ms["p50"],
        run.latency_ms["p99"],
    )
    return rnd(
        {
            "app": label,
            "workers": clients,
            "ok_rps": run.tps,
            "latency_ms": run.latency_ms,
            "errors": {"status": run.failed, "connect": 0, "read": 0, "write": 0, "timeout": 0},
            "stored_messages": None,
        }
    )


def remeasure(ctx: Context) -> Result | None:
    """After the routing proposals: the service again, against the bare runs above."""
    previous = ctx.results["webhook_http"]
    if previous.get("status") != "ok":
        return None
    bare = [r for r in previous["runs"] if r["app"] == "bare"]
    runs = []
    for tag, workers in enumerate(ctx.profile.http_workers, start=1):
        runs += [measure_direct(ctx, workers), measure_app(ctx, SERVICE, workers, 50 + tag)]
    return {"after_routing_proposals": summary(ctx, bare + runs)}


def blocked_reason() -> str | None:
    if not (ROOT / "app" / "webhook.py").exists():
        return "app/webhook.py does not exist yet"
    if shutil.which("wrk") is None:
        return "wrk is not installed (scripts/setup installs it)"
    return None


def pairs_to_run(ctx: Context) -> list[tuple[int, App]]:
    return [(workers, app) for workers in ctx.profile.http_workers for app in (BARE, SERVICE)]


def summary(ctx: Context, runs: list[Result]) -> Result:
    pairs = []
    for workers in ctx.profile.http_workers:
        bare = next(r for r in runs if r["app"] == "bare" and r["workers"] == workers)
        svc = next(r for r in runs if r["app"] == "service" and r["workers"] == workers)
        direct = next((r for r in runs if r["app"] == "direct" and r["workers"] == workers), None)
        statuses = next((r for r in runs if r["app"] == "direct_status" and r["workers"] == workers), None)
        pairs.append(
            {
                "workers": workers,
                "service_rps": svc["ok_rps"],
                "bare_rps": bare["ok_rps"],
                "direct_rps": direct["ok_rps"] if direct else None,
                "ratio": ratio(svc["ok_rps"], bare["ok_rps"]),
                "service_over_direct": ratio(svc["ok_rps"], direct["ok_rps"]) if direct else None,
                "service_p99_ms": svc["latency_ms"]["p99"],
                "bare_p99_ms": bare["latency_ms"]["p99"],
                "direct_p99_ms": direct["latency_ms"]["p99"] if direct else None,
                "direct_status_rps": statuses["ok_rps"] if statuses else None,
            }
        )
    return rnd(
        {
            "status": "ok",
            "world": ctx.world.name,
            "tenants": ctx.world.tenants,
            "runs": runs,
            "pairs": pairs,
            "gunicorn": "sync workers, app:create_app() as deployed by scripts/run (ZR_WORKERS default 2)",
        }
    )


def measure_app(ctx: Context, app: App, workers: int, tag: int) -> Result:
    """One wrk run against `app` with `workers` gunicorn workers, after a one-second warm-up."""
    per_run = ctx.profile.http_s * 3000 + 2000  # more unique wamids than the service can take in the run
    bodies, warm = ctx.work / f"bodies-{tag}.tsv", ctx.work / f"bodies-{tag}-warm.tsv"
    write_bodies(bodies, per_run, ctx.world, f"{tag:02d}", seed=tag)
    write_bodies(warm, 5000, ctx.world, f"W{tag:02d}", seed=1000 + tag)
    env = {
        "DATABASE_URL": ctx.scratch.url,
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_PHONE_NUMBER_ID": CENTRAL_PHONE_NUMBER_ID,
        "ZR_ENV": "development",
    }
    server = Gunicorn(app.target, workers, env, ctx.work / f"gunicorn-{app.label}-{workers}.log")
    try:
        server.wait_ready(app.ready_path, app.ready)
        load(server.url, warm, 1, ctx.profile.http_connections)  # warm up (workers, pools, plan caches)
        since = ctx.scratch.scalar("select now()")
        r = load(server.url, bodies, ctx.profile.http_s, ctx.profile.http_connections)
    finally:
        server.stop()
        warm.unlink()
        bodies.unlink()
    stored = int(ctx.scratch.scalar(STORED, [since]))
    r |= {"app": app.label, "workers": workers, "stored_messages": stored if app is SERVICE else None}
    errors = r["errors"]
    log.info(
        "    %-7s %d workers: %7.0f ok req/s, p50 %.2f p99 %.2f ms, non-2xx %d, socket errors %d",
        app.label,
        workers,
        r["ok_rps"],
        r["latency_ms"]["p50"],
        r["latency_ms"]["p99"],
        errors["status"],
        socket_errors(r),
    )
    return r


def load(url: str, bodies: Path, seconds: int, connections: int) -> Result:
    return wrk(url + WEBHOOK_PATH, LUA, {"ZR_BENCH_BODIES": str(bodies)}, seconds, connections)


def socket_errors(run: Result) -> int:
    return sum(run["errors"][k] for k in ("connect", "read", "write", "timeout"))


def write_bodies(path: Path, count: int, world: World, run_tag: str, seed: int) -> None:
    """`count` signed single-message webhooks with unique wamids, one per line: "<signature>\\t<body>"."""
    rng = random.Random(seed)
    now = int(time.time())
    with open(path, "w") as f:
        for i in range(count):
            phone, t = random_sender(rng, world.tenants)
            wamid = f"wamid.HBgM{run_tag}{i:010d}{rng.getrandbits(48):012X}"
            raw = json.dumps(webhook(phone, t, wamid, now, rng.choice(MESSAGE_BODIES)), separators=(",", ":")).encode()
            f.write(signature(raw) + "\t" + raw.decode() + "\n")


def webhook(phone: str, tenant: int, wamid: str, timestamp: int, text: str) -> Result:
    """A webhook with one text message, as Meta sends it."""
    message = {"from": phone, "id": wamid, "timestamp": str(timestamp), "type": "text", "text": {"body": text}}
    value = {
        "messaging_product": "whatsapp",
        "metadata": CENTRAL_NUMBER,
        "contacts": [{"profile": {"name": f"Tenant {tenant}"}, "wa_id": phone}],
        "messages": [message],
    }
    changes = [{"value": value, "field": "messages"}]
    return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": changes}]}


def signature(raw: bytes) -> str:
    return "sha256=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()


def goals(result: Result) -> list[Result] | None:
    if result.get("status") != "ok":
        return None
    return [
        goal(
            f"webhooks/s >= 70% of direct ingest_whatsapp_webhook calls/s ({p['workers']} workers = clients)",
            p["service_over_direct"],
            ">=",
            0.7,
            "x",
        )
        for p in result["pairs"]
        if p.get("service_over_direct") is not None
    ]


def plot(result: Result) -> Figure | None:
    """Throughput and p99 of both apps per worker count."""
    if result.get("status") != "ok":
        return None
    pairs = result["pairs"]
    fig, (rps, p99) = plt.subplots(1, 2, figsize=(10, 4))
    labels = [f"{p['workers']} workers" for p in pairs]
    xs = range(len(labels))
    rps.bar([x - 0.27 for x in xs], [p["bare_rps"] for p in pairs], 0.27, label="bare Flask (signature only)")
    rps.bar(xs, [p.get("direct_rps") or 0 for p in pairs], 0.27, label="direct ingest_whatsapp_webhook (pgbench)")
    rps.bar([x + 0.27 for x in xs], [p["service_rps"] for p in pairs], 0.27, label="webhook service")
    rps.set_yscale("log")
    rps.set(ylabel="requests / s (log)", title="Signed webhooks over loopback")
    p99.bar([x - 0.27 for x in xs], [p["bare_p99_ms"] for p in pairs], 0.27, label="bare p99")
    p99.bar(xs, [p.get("direct_p99_ms") or 0 for p in pairs], 0.27, label="direct p99")
    p99.bar([x + 0.27 for x in xs], [p["service_p99_ms"] for p in pairs], 0.27, label="service p99")
    p99.set(ylabel="ms", title="p99 latency")
    for ax in (rps, p99):
        ax.set_xticks(list(xs), labels)
        ax.legend(fontsize=8)
    return fig


RUN_COLUMNS: list[Column] = [
    ("app", at("app")),
    ("gunicorn workers", at("workers")),
    ("ok req/s", at("ok_rps")),
    ("p50 ms", at("latency_ms.p50")),
    ("p99 ms", at("latency_ms.p99")),
    ("non-2xx", at("errors.status")),
    ("socket errors", socket_errors),
    ("messages stored", at("stored_messages")),
]


def runs_table(runs: list[Result]) -> str:
    return columns_table(RUN_COLUMNS, runs)


def after_table(after: Result) -> str:
    """The service per worker count, after the routing proposals."""

    def p50(pair: Result) -> float:
        run = next(x for x in after["runs"] if x["app"] == "service" and x["workers"] == pair["workers"])
        return float(run["latency_ms"]["p50"])

    columns: list[Column] = [
        ("gunicorn workers", at("workers")),
        ("service ok req/s", at("service_rps")),
        ("p50 ms", p50),
        ("p99 ms", at("service_p99_ms")),
        ("service / direct", at("service_over_direct")),
        ("service / bare", at("ratio")),
    ]
    return columns_table(columns, after["pairs"])


def pairs_table(pairs: list[Result]) -> str:
    columns: list[Column] = [
        ("gunicorn workers = pgbench clients", at("workers")),
        ("service req/s", at("service_rps")),
        ("direct calls/s", at("direct_rps")),
        ("direct status calls/s", at("direct_status_rps")),
        ("service / direct", at("service_over_direct")),
        ("bare req/s", at("bare_rps")),
        ("service p99 ms", at("service_p99_ms")),
        ("direct p99 ms", at("direct_p99_ms")),
    ]
    return columns_table(columns, pairs)


BENCHMARK = Benchmark(
    name="webhook_http",
    measure=measure,
    worlds=("large",),
    remeasure_after="routing",
    remeasure=remeasure,
    goals=goals,
    plot=plot,
    report=lambda r: {"runs_table": runs_table, "after_table": after_table, "pairs_table": pairs_table},
)

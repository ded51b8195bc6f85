"""9. Media worker: how fast tenants' photos reach Storage, and what media costs inbound routing.

In the small world (its scratch database, after the benchmarks measured there):

1. Routing with media in the mix: pgbench `route_inbound_media.sql` (route_inbound.sql's senders and
   texts) with 0%, 25% and 100% of the messages photos as Meta's webhook carries them (a media id,
   the MIME type, the SHA-256). Routing stores a photo like a text and queues its download as one
   private.media_jobs row in the same transaction; no byte moves on the webhook's path. Back to
   back at 1 client and the most clients of the profile.
2. Downloads: the fake Graph API (tests/fake_graph.py) and the Storage stand-in (app.local.storage,
   on the scratch database) run as processes of their own on loopback; photos of media_file_bytes
   (random bytes behind a JPEG header) are registered with the fake through its upload endpoint,
   and media_files image messages from the world's senders naming them go through
   route_inbound_message (every earlier job is settled first, so the worker sees only these). The
   worker (app.media.MediaWorker in this process) then claims and processes batches until none is
   left: retrieve the URL, download, check the SHA-256, upload to Storage, complete. Twice: with the
   configuration `python -m app.media` reads from the environment (ZR_MEDIA_RATE, default 20 Graph
   requests/s, i.e. 10 photos/s; ZR_MEDIA_CONCURRENCY 4, ZR_MEDIA_BATCH_SIZE 4), then with the rate
   lifted to show what the worker and the stand-ins manage at that concurrency. MB/s is the bytes
   stored over the time from the first claim to the end of the last batch.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import random
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import psycopg

from app.db import make_pool
from app.local.tokens import LOCAL_JWT_SECRET, LOCAL_SERVICE_ROLE_KEY
from app.media import MediaConfig, MediaJob, MediaWorker, Outcome
from bench.harness.benchmark import Benchmark, Context
from bench.harness.http import Service, free_port
from bench.harness.numbers import percentile, ratio, rnd
from bench.harness.paths import ROOT
from bench.harness.pgbench import pgbench
from bench.harness.report import Column, at, columns_table
from bench.harness.results import Result, goal
from bench.harness.scratch import Scratch
from bench.harness.worlds import CENTRAL_NUMBER, CENTRAL_PHONE_NUMBER_ID, random_sender, routing_defines

log = logging.getLogger(__name__)

FAKE_GRAPH = ROOT / "tests" / "fake_graph.py"
ACCESS_TOKEN = "bench-media-access-token"  # the fake's and the worker's, nothing else's
GRAPH_VERSION = "v21.0"
MEDIA_SHARES = (0, 25, 100)  # % of routed messages that are photos
DISTINCT_FILES = 10  # photos registered with the fake; the messages name them in turn
UNTHROTTLED_RATE = 10_000.0  # Graph requests per second when the rate is lifted
WAMID_PREFIX = "wamid.BENCHMEDIA"
MB = 1_000_000
GOAL_ROUTING_SHARE = 0.8  # a 25% photo mix keeps at least this share of text-only throughput


def measure(ctx: Context) -> Result:
    return {
        "world": ctx.world.name,
        "tenants": ctx.world.tenants,
        "routing": measure_routing(ctx),
        "downloads": measure_downloads(ctx),
    }


# --- 1. routing with media in the mix ------------------------------------------------------------------


def measure_routing(ctx: Context) -> Result:
    scratch, world, budget = ctx.scratch, ctx.world, ctx.profile.route
    clients = sorted({1, max(ctx.profile.clients)})

    def defines(share: int) -> dict[str, Any]:
        return routing_defines(world) | {"media_pct": share}

    pgbench(scratch.url, "route_inbound_media", 2, budget.warm(), defines(25), ctx.work)
    scratch.execute("vacuum analyze public.whatsapp_messages, public.whatsapp_conversations")
    scratch.checkpoint()
    runs: list[Result] = []
    for c in clients:
        text_tps: float | None = None
        for share in MEDIA_SHARES:
            since = scratch.scalar("select clock_timestamp()")
            run = pgbench(scratch.url, "route_inbound_media", c, budget, defines(share), ctx.work)
            routed, photos = scratch.execute(
                "select count(*), count(*) filter (where type = 'image') from public.whatsapp_messages"
                " where created_at >= %s and direction = 'incoming'",
                [since],
            )[0]
            queued = scratch.scalar("select count(*) from private.media_jobs where created_at >= %s", [since])
            text_tps = run.tps if share == 0 else text_tps
            runs.append(
                {
                    "clients": c,
                    "media_pct": share,
                    "routed": routed,
                    "photos": photos,
                    "download_jobs_queued": queued,
                    "routing": run.as_dict(),
                    "vs_text_only": rnd(ratio(run.tps, text_tps)),
                }
            )
            log.info(
                "    %d client(s), %3d%% photos: %7.0f msg/s p50 %.2f p99 %.2f ms, %d download jobs queued (%.2fx)",
                c,
                share,
                run.tps,
                run.latency_ms["p50"] or 0,
                run.latency_ms["p99"] or 0,
                queued,
                ratio(run.tps, text_tps) or 0,
            )
    return {"clients": clients, "budget": dataclasses.asdict(budget), "runs": runs}


# --- 2. downloads ---------------------------------------------------------------------------------------


class TimedWorker(MediaWorker):
    """The media worker, timing each job it processes."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.job_s: list[float] = []
        self._job_s_lock = threading.Lock()

    def process(self, job: MediaJob) -> Outcome:
        started = time.perf_counter()
        outcome = super().process(job)
        with self._job_s_lock:
            self.job_s.append(time.perf_counter() - started)
        return outcome


def measure_downloads(ctx: Context) -> Result:
    profile, scratch = ctx.profile, ctx.scratch
    work = ctx.work / "media_worker"
    work.mkdir(parents=True, exist_ok=True)
    storage_port, graph_port = free_port(), free_port()
    storage_cmd = [sys.executable, "-m", "app.local.storage", "--port", str(storage_port)]
    storage_env = {
        "ZR_ENV": "development",
        "DATABASE_URL": scratch.url,
        "ZR_JWT_SECRET": LOCAL_JWT_SECRET,
        "ZR_STORAGE_ROOT": str(work / "storage"),
    }
    graph_cmd = [sys.executable, str(FAKE_GRAPH), str(graph_port), "--quiet"]
    graph_env = {
        "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
        "WHATSAPP_PHONE_NUMBER_ID": CENTRAL_PHONE_NUMBER_ID,
        "GRAPH_API_VERSION": GRAPH_VERSION,
    }
    with (
        Service(storage_cmd, storage_env, work / "storage.log", storage_port) as storage,
        Service(graph_cmd, graph_env, work / "fake_graph.log", graph_port) as graph,
    ):
        storage.wait_ready("/storage/v1/object/info/whatsapp-media/ready")
        graph.wait_ready(f"/{GRAPH_VERSION}/ready")
        with quiet("httpx"):
            photos = register_photos(graph.url, [profile.media_file_bytes] * min(DISTINCT_FILES, profile.media_files))
        config = worker_config(scratch, storage.url, graph.url, work)
        passes = []
        for label, cfg in (
            ("as configured", config),
            ("rate lifted", replace(config, rate=max(config.rate, UNTHROTTLED_RATE))),
        ):
            passes.append(download_pass(ctx, label, cfg, photos))
    return {
        "files": profile.media_files,
        "file_bytes": profile.media_file_bytes,
        "distinct_files": len(photos),
        "passes": passes,
    }


def register_photos(graph_url: str, sizes: list[int], token: str = ACCESS_TOKEN) -> list[tuple[str, str]]:
    """A photo of each size (random bytes behind a JPEG header) uploaded to the fake as Meta's upload
    endpoint takes them, with the fake's access token: (media id, base64 SHA-256) each."""
    photos = []
    with httpx.Client(timeout=60) as http:
        for size in sizes:
            data = b"\xff\xd8\xff\xe0" + os.urandom(size - 4)
            answer = http.post(
                f"{graph_url}/{GRAPH_VERSION}/{CENTRAL_PHONE_NUMBER_ID}/media",
                headers={"Authorization": f"Bearer {token}"},
                data={"messaging_product": "whatsapp", "type": "image/jpeg"},
                files={"file": ("photo.jpg", data, "image/jpeg")},
            )
            answer.raise_for_status()
            photos.append((str(answer.json()["id"]), base64.b64encode(hashlib.sha256(data).digest()).decode()))
    return photos


def worker_config(scratch: Scratch, storage_url: str, graph_url: str, work: Path) -> MediaConfig:
    """What `python -m app.media` would run with here: ZR_MEDIA_* from the environment, the stand-ins' URLs."""
    env = {
        **os.environ,
        "ZR_ENV": "development",
        "DATABASE_URL": scratch.url,
        "SUPABASE_URL": storage_url,
        "SUPABASE_SERVICE_ROLE_KEY": LOCAL_SERVICE_ROLE_KEY,
        "GRAPH_API_BASE": graph_url,
        "GRAPH_API_VERSION": GRAPH_VERSION,
        "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
        "WHATSAPP_PHONE_NUMBER_ID": CENTRAL_PHONE_NUMBER_ID,
        "ZR_MEDIA_TMP_DIR": str(work),
    }
    return MediaConfig.from_env(env)


def route_photos(scratch: Scratch, tenants: int, photos: list[tuple[str, str]], n: int, label: str) -> Result:
    """`n` image messages from the world's senders, naming the photos in turn; every other job is settled
    first, so the worker claims only these. Returns the jobs queued and how the messages were routed."""
    rng = random.Random(f"media_worker:{label}")
    prefix = f"{WAMID_PREFIX}{label.replace(' ', '').upper()}"
    with psycopg.connect(scratch.url, autocommit=True) as conn:
        conn.execute(
            "update private.media_jobs set done_at = now(), last_error = 'bench: settled' where done_at is null"
        )
        for k in range(n):
            media_id, sha256 = photos[k % len(photos)]
            phone, t = random_sender(rng, tenants)
            message = {
                "from": phone,
                "id": f"{prefix}{k:06d}",
                "timestamp": str(int(time.time())),
                "type": "image",
                "image": {
                    "caption": "Leak under the sink",
                    "mime_type": "image/jpeg",
                    "sha256": sha256,
                    "id": media_id,
                },
            }
            contact = {"profile": {"name": f"Tenant {t}"}, "wa_id": phone}
            conn.execute(
                "select public.route_inbound_message(%s::jsonb, %s::jsonb, %s::jsonb)",
                [json.dumps(message), json.dumps(contact), json.dumps(CENTRAL_NUMBER)],
            )
        outcomes = dict(
            conn.execute(
                "select routing_status, count(*) from public.whatsapp_messages where wamid like %s group by 1",
                [prefix + "%"],
            ).fetchall()
        )
        row = conn.execute("select count(*) from private.media_jobs where done_at is null").fetchone()
    return {"jobs": int(row[0]) if row else 0, "routing_outcomes": outcomes}


@contextlib.contextmanager
def quiet(*names: str) -> Iterator[None]:
    """Only warnings and errors from these loggers meanwhile."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def download_pass(ctx: Context, label: str, config: MediaConfig, photos: list[tuple[str, str]]) -> Result:
    profile, scratch = ctx.profile, ctx.scratch
    queued = route_photos(scratch, ctx.world.tenants, photos, profile.media_files, label)
    pool = make_pool(config.pool_config(), open_now=True, name="bench-media")
    worker = TimedWorker(config, pool)
    deadline = time.monotonic() + 600
    try:
        with quiet("app.media", "httpx"):  # a line per job and per request: the totals are logged below
            started = ended = time.perf_counter()
            batches = 0
            while time.monotonic() < deadline and worker.run_once():
                ended = time.perf_counter()
                batches += 1
    finally:
        worker.close()
        pool.close()
    seconds = ended - started
    stats = worker.stats
    times = sorted(worker.job_s)
    stored_bytes = scratch.scalar(
        "select coalesce(sum(media_size), 0) from public.whatsapp_messages"
        " where wamid like %s and media_status = 'stored'",
        [f"{WAMID_PREFIX}{label.replace(' ', '').upper()}%"],
    )
    # Two Graph requests per photo (retrieve, download); none worth showing once the rate is lifted.
    ceiling = config.rate / 2 * profile.media_file_bytes / MB if config.rate < UNTHROTTLED_RATE else None
    result: Result = {
        "label": label,
        "rate": config.rate,
        "concurrency": config.concurrency,
        "batch_size": config.batch_size,
        "jobs": queued["jobs"],
        "routing_outcomes": queued["routing_outcomes"],
        "stored": stats.stored,
        "failed": dict(stats.failed),
        "bytes": stats.bytes,
        "bytes_in_database": int(stored_bytes or 0),
        "batches": batches,
        "seconds": seconds,
        "mb_s": stats.bytes / MB / seconds if seconds else None,
        "jobs_s": stats.stored / seconds if seconds else None,
        "rate_ceiling_mb_s": ceiling,
        "job_ms": {
            "p50": 1000 * (percentile(times, 50) or 0),
            "p99": 1000 * (percentile(times, 99) or 0),
            "max": 1000 * (times[-1] if times else 0),
        },
    }
    log.info(
        "    downloads (%s: rate %g/s, concurrency %d, batch %d): %d of %d stored, %.1f MB in %.2f s = %.1f MB/s"
        " (%.1f photos/s; job p50 %.0f ms, p99 %.0f ms); failed %s",
        label,
        config.rate,
        config.concurrency,
        config.batch_size,
        stats.stored,
        queued["jobs"],
        stats.bytes / MB,
        seconds,
        result["mb_s"] or 0,
        result["jobs_s"] or 0,
        result["job_ms"]["p50"],
        result["job_ms"]["p99"],
        dict(stats.failed) or "none",
    )
    return rnd(result)


# --- goals and report -------------------------------------------------------------------------------------


def goals(result: Result) -> list[Result]:
    out = []
    for run in result["routing"]["runs"]:
        if run["media_pct"] == 25:
            out.append(
                goal(
                    f"routing with 25% photos >= {GOAL_ROUTING_SHARE:.0%} of text-only ({run['clients']} client(s))",
                    run["vs_text_only"],
                    ">=",
                    GOAL_ROUTING_SHARE,
                    "x",
                )
            )
    for p in result["downloads"]["passes"]:
        out.append(goal(f"every queued photo stored ({p['label']})", p["stored"], "==", p["jobs"], "photos"))
    return out


ROUTING_COLUMNS: list[Column] = [
    ("clients", at("clients")),
    ("photos", lambda r: f"{r['media_pct']}%"),
    ("msg/s", at("routing.tps")),
    ("p50 ms", at("routing.latency_ms.p50")),
    ("p99 ms", at("routing.latency_ms.p99")),
    ("download jobs queued", at("download_jobs_queued")),
    ("vs text only", at("vs_text_only")),
]

DOWNLOAD_COLUMNS: list[Column] = [
    ("worker", at("label")),
    ("rate (Graph req/s)", at("rate")),
    ("concurrency / batch", lambda p: f"{p['concurrency']} / {p['batch_size']}"),
    ("photos stored", lambda p: f"{p['stored']:,} of {p['jobs']:,}"),
    ("seconds", at("seconds")),
    ("MB/s", at("mb_s")),
    ("photos/s", at("jobs_s")),
    ("job p50 ms", at("job_ms.p50")),
    ("job p99 ms", at("job_ms.p99")),
    ("rate's ceiling MB/s", at("rate_ceiling_mb_s")),
]


def routing_table(result: Result) -> str:
    return columns_table(ROUTING_COLUMNS, result["routing"]["runs"])


def downloads_table(result: Result) -> str:
    return columns_table(DOWNLOAD_COLUMNS, result["downloads"]["passes"])


BENCHMARK = Benchmark(
    name="media_worker",
    measure=measure,
    worlds=("small",),
    goals=goals,
    report=lambda r: {"routing_table": routing_table, "downloads_table": downloads_table},
)

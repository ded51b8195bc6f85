"""10. Soak: the whole system for 30 minutes at Meta's standard throughput tier (80 messages/s).

Measured only when named (`scripts/bench --only soak`: 30 minutes of load; `--quick`: 1 minute,
to check the code; `--soak-minutes N`), in the small world's scratch database. Every process of
production runs as a process of its own, started as scripts/run starts it: the webhook service
(gunicorn -c python:app.gunicorn_conf, 2 sync workers, /metrics through PROMETHEUS_MULTIPROC_DIR),
the outbound sender (python -m app.sender) and the media worker (python -m app.media), with the
fake Graph API (tests/fake_graph.py) acting as Meta and the Storage stand-in (app.local.storage).

- Tenants: open loop at 80 signed webhooks/s (X-Hub-Signature-256), one message each, message i
  due at t0 + i / 80 and its latency counted from then (a stall shows as latency, not as a lower
  rate); senders drawn from the world's tenant phones (3% numbers nobody has); 10% photos naming
  one of 20 files of 50-200 KB that the fake serves, the rest text. A webhook not answered 2xx
  is delivered again after 5, 15 and 45 s, as Meta does (fewer times).
- Landlords: for 30% of the messages the webhook answers `delivered`, the conversation's landlord
  replies 2-6 s later with send_whatsapp_message in their own authenticated transaction
  (app.db.transaction_as_user: role authenticated, their JWT claims), as PostgREST runs the call.
- Meta: the fake answers every send with a wamid and 0.5 s, 2 s and 10 s later POSTs the signed
  status webhooks sent, delivered and read to the service (retried like Meta when not 2xx).
- Prometheus: /metrics scraped every sample (it reads the queue gauges from the database).
- Sampled every 10 s (quick: 2 s): the window's webhook latency (p50, p99, max) and errors, the
  messages/s achieved, outbound queue depth and oldest queued age, media jobs waiting, status
  webhooks, replies, the memory (RSS; private memory for Postgres, whose RSS counts the shared
  buffers it touched) and CPU of every process, the size, dead tuples and autovacuum runs of the
  tables the traffic writes, WAL written.
- Then the load stops and the system drains (replies sent and read, photos stored) for at most
  two minutes; the totals are counted in the database: nothing lost, every reply read.
Verdicts on growth: a least-squares slope over the second half of the load phase.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import itertools
import json
import logging
import math
import os
import queue
import random
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from prometheus_client.parser import text_string_to_metric_families

from app.config import Config
from app.db import make_pool, transaction_as_user
from app.local.tokens import LOCAL_JWT_SECRET, LOCAL_SERVICE_ROLE_KEY
from bench.benchmarks.media_worker import quiet, register_photos
from bench.benchmarks.webhook_http import MESSAGE_BODIES
from bench.harness import procs
from bench.harness.benchmark import Benchmark, Context
from bench.harness.http import Process, Service, free_port
from bench.harness.numbers import percentile, rnd
from bench.harness.paths import ROOT
from bench.harness.plots import plt
from bench.harness.report import Column, at, columns_table
from bench.harness.results import Result, goal
from bench.harness.scratch import Scratch, superuser_url
from bench.harness.worlds import CENTRAL_NUMBER, CENTRAL_PHONE_NUMBER_ID, random_sender

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

RATE = 80.0  # inbound messages per second: Meta's standard throughput tier
MEDIA_SHARE = 0.10  # of inbound messages: photos
REPLY_SHARE = 0.30  # of delivered messages: the landlord replies
REPLY_DELAY_S = (2.0, 6.0)  # ... this long after the webhook was answered
PHOTO_SIZES = (50_000, 200_000)  # bytes, uniformly; DISTINCT_PHOTOS files in all
DISTINCT_PHOTOS = 20
DRIVER_THREADS = 32  # webhooks in flight at once at most (open loop: a late one waits for a thread)
LANDLORD_THREADS = 2
REQUEST_TIMEOUT_S = 10.0
REDELIVERY_S = (5.0, 15.0, 45.0)  # a webhook not answered 2xx is delivered again (Meta: for days)
DRAIN_S = {"quick": 45.0, "full": 120.0}  # after the load: time for replies, statuses and photos to finish
SHORT_S = 600  # a load phase shorter than this cannot tell slow growth from noise
GOAL_P99_MS = 250.0
GRAPH_VERSION = "v21.0"
WEBHOOK_PATH = "/webhooks/whatsapp"
FAKE_GRAPH = ROOT / "tests" / "fake_graph.py"
APP_SECRET = "bench-soak-app-secret"  # the service's and the fake's, nothing else's
ACCESS_TOKEN = "bench-soak-access-token"
METRICS_TOKEN = "bench-soak-metrics-token"
REPLIES = [
    "Thanks, I will send someone on Thursday morning.",
    "Got it, the plumber has your number and will call you.",
    "Yes that is fine.",
    "Received with thanks.",
    "I will check with the agency and come back to you today.",
]
# The tables the traffic writes (realtime.messages is partitioned: its rows are in the default partition).
TABLES = [
    "public.whatsapp_messages",
    "private.whatsapp_message_details",
    "public.whatsapp_conversations",
    "realtime.messages_default",
    "private.media_jobs",
    "storage.objects",
    "private.pending_message_statuses",
]
# Growth verdicts: a series grows when its second-half slope exceeds both (per hour).
MEMORY_TOLERANCE = (4.0, 0.02)  # MB/h, share of its median per hour
QUEUE_TOLERANCE = (100.0, 0.0)  # messages or jobs per hour


# --- the system ---------------------------------------------------------------------------------------

SERVICE, SENDER, MEDIA, GRAPH, STORAGE = "service", "sender", "media worker", "fake Graph API", "Storage stand-in"
DRIVER = "driver (bench)"
# Watched and shown, but not production: the stand-ins and the driver (which holds the series it records).
HARNESS = (GRAPH, STORAGE, DRIVER)


class System:
    """The processes of production, each started as scripts/run starts it, on the scratch database,
    with the fake Graph API acting as Meta and the Storage stand-in; stopped in reverse order."""

    def __init__(self, scratch: Scratch, work: Path, workers: int = 2):
        self.work = work
        self.workers = workers
        self.service_port, self.storage_port, self.graph_port = free_port(), free_port(), free_port()
        self.service_url = f"http://127.0.0.1:{self.service_port}"
        self.storage_url = f"http://127.0.0.1:{self.storage_port}"
        self.graph_url = f"http://127.0.0.1:{self.graph_port}"
        (work / "prometheus").mkdir(parents=True, exist_ok=True)
        (work / "media-tmp").mkdir(parents=True, exist_ok=True)
        self.env = {
            "ZR_ENV": "development",  # the built-in secrets for everything not named here
            "DATABASE_URL": scratch.url,
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
            "WHATSAPP_PHONE_NUMBER_ID": CENTRAL_PHONE_NUMBER_ID,
            "GRAPH_API_BASE": self.graph_url,
            "GRAPH_API_VERSION": GRAPH_VERSION,
            "SUPABASE_URL": self.storage_url,
            "SUPABASE_SERVICE_ROLE_KEY": LOCAL_SERVICE_ROLE_KEY,
            "ZR_JWT_SECRET": LOCAL_JWT_SECRET,
            "ZR_METRICS_TOKEN": METRICS_TOKEN,
            "PROMETHEUS_MULTIPROC_DIR": str(work / "prometheus"),
            "ZR_STORAGE_ROOT": str(work / "storage"),
            "ZR_MEDIA_TMP_DIR": str(work / "media-tmp"),
        }
        self.processes: dict[str, Process] = {}

    def __enter__(self) -> System:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        py, bindir = sys.executable, Path(sys.executable).parent
        storage = self.service(
            STORAGE, self.storage_port, [py, "-m", "app.local.storage", "--port", str(self.storage_port)]
        )
        graph_cmd = [py, str(FAKE_GRAPH), str(self.graph_port), "--quiet", "--max-recorded", "1000"]
        graph = self.service(GRAPH, self.graph_port, [*graph_cmd, "--status-webhook", self.service_url + WEBHOOK_PATH])
        gunicorn = [
            str(bindir / "gunicorn"),
            "-c",
            "python:app.gunicorn_conf",
            "--bind",
            f"127.0.0.1:{self.service_port}",
        ]
        service = self.service(
            SERVICE, self.service_port, [*gunicorn, "--workers", str(self.workers), "--access-logfile", "-"]
        )
        storage.wait_ready("/storage/v1/object/info/whatsapp-media/ready")
        graph.wait_ready(f"/{GRAPH_VERSION}/ready")
        service.wait_ready("/healthz")
        for name, module in ((SENDER, "app.sender"), (MEDIA, "app.media")):
            self.processes[name] = Process([py, "-m", module], self.env, self.work / f"{module}.log")
        time.sleep(1.0)
        self.check()

    def service(self, name: str, port: int, cmd: list[str]) -> Service:
        svc = Service(cmd, self.env, self.work / f"{name.replace(' ', '_')}.log", port)
        self.processes[name] = svc
        return svc

    def check(self) -> None:
        """RuntimeError (with the end of its log) when a process has exited."""
        for name, p in self.processes.items():
            if p.proc.poll() is not None:
                p.log.flush()
                tail = Path(p.log.name).read_text()[-3000:]
                raise RuntimeError(f"{name} exited with {p.proc.returncode}:\n{tail}")

    def stop(self) -> None:
        for name in (SENDER, MEDIA, SERVICE, GRAPH, STORAGE):
            if name in self.processes:
                self.processes[name].stop()

    def pids(self) -> dict[str, list[int]]:
        """The application's processes by name (gunicorn's workers each by name, in pid order)."""
        out = {name: [p.pid] for name, p in self.processes.items() if name != SERVICE}
        master = self.processes[SERVICE].pid
        out["gunicorn master"] = [master]
        for i, worker in enumerate(procs.children(master), start=1):
            out[f"gunicorn worker {i}"] = [worker]
        return out


# --- measuring ---------------------------------------------------------------------------------------


class Histogram:
    """Latencies in log buckets 1% wide from 0.1 ms to ~100 s: percentiles of a whole run in fixed memory."""

    LOW, STEP, BUCKETS = 1e-4, 1.01, 1400

    def __init__(self) -> None:
        self.counts = [0] * self.BUCKETS
        self.n = 0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        i = 0 if seconds <= self.LOW else min(self.BUCKETS - 1, 1 + int(math.log(seconds / self.LOW, self.STEP)))
        self.counts[i] += 1
        self.n += 1
        self.max = max(self.max, seconds)

    def percentile(self, p: float) -> float | None:
        """The upper bound of the bucket holding the p-th percentile (at most 1% high)."""
        if not self.n:
            return None
        rank, seen = math.ceil(self.n * p / 100.0), 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank:
                return min(self.max, self.LOW * self.STEP**i)
        return self.max


class Window:
    """What the tenants' webhooks did since the last sample."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.lateness: list[float] = []  # from the scheduled send to the driver's request: the driver's own delay
        self.outcomes: Counter[str] = Counter()  # "2xx", HTTP status, "timeout", "error"
        self.accepted_first = 0  # first deliveries answered 2xx


class Tenants:
    """The open-loop load: signed webhooks at `rate`, from the world's tenants, on DRIVER_THREADS threads."""

    def __init__(self, url: str, tenants: int, photos: list[tuple[str, str]], tag: str, landlords: Landlords):
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)
        self.tenants = tenants
        self.photos = photos
        self.tag = tag
        self.landlords = landlords
        self.rng = random.Random(f"soak:{tag}")
        self.lock = threading.Lock()
        self.window = Window()
        self.histogram = Histogram()
        self.lateness = Histogram()
        self.counts: Counter[str] = Counter()
        self.work: queue.Queue[tuple[float, int, bytes, int] | None] = queue.Queue()
        self.redeliveries: list[tuple[float, int, bytes, int]] = []  # (due, i, body, attempt)
        self.threads = [
            threading.Thread(target=self._worker, name=f"soak-tenant-{k}", daemon=True) for k in range(DRIVER_THREADS)
        ]
        for t in self.threads:
            t.start()

    def take_window(self) -> Window:
        with self.lock:
            w, self.window = self.window, Window()
        return w

    def run(self, t0: float, seconds: float, stop: threading.Event) -> None:
        """Message i at t0 + i / RATE until `seconds` have passed (or `stop`); redeliveries when due."""
        i = 0
        end = t0 + seconds
        while not stop.is_set():
            due = t0 + i / RATE
            if due >= end:
                break
            self._redeliver(until=due)
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            body = self.webhook(i)
            with self.lock:
                self.counts["scheduled"] += 1
            self.work.put((due, i, body, 0))
            i += 1

    def drain_redeliveries(self, until: float) -> None:
        self._redeliver(until)

    def close(self) -> None:
        for _ in self.threads:
            self.work.put(None)
        for t in self.threads:
            t.join(timeout=REQUEST_TIMEOUT_S + 5)

    def _redeliver(self, until: float) -> None:
        with self.lock:
            due_now = [r for r in self.redeliveries if r[0] <= until]
            self.redeliveries = [r for r in self.redeliveries if r[0] > until]
        for r in due_now:
            self.work.put(r)

    def webhook(self, i: int) -> bytes:
        """Message i as Meta sends it: text, or (MEDIA_SHARE) a photo the fake serves."""
        phone, t = random_sender(self.rng, self.tenants)
        message: dict[str, Any] = {"from": phone, "id": self.wamid(i), "timestamp": str(int(time.time()))}
        if self.rng.random() < MEDIA_SHARE:
            media_id, sha256 = self.rng.choice(self.photos)
            image = {"caption": "Photo of the problem", "mime_type": "image/jpeg", "sha256": sha256, "id": media_id}
            message |= {"type": "image", "image": image}
            with self.lock:
                self.counts["photos"] += 1
        else:
            message |= {"type": "text", "text": {"body": self.rng.choice(MESSAGE_BODIES)}}
        value = {
            "messaging_product": "whatsapp",
            "metadata": CENTRAL_NUMBER,
            "contacts": [{"profile": {"name": f"Tenant {t}"}, "wa_id": phone}],
            "messages": [message],
        }
        body = {
            "object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
        }
        return json.dumps(body, separators=(",", ":")).encode()

    def wamid(self, i: int) -> str:
        return f"wamid.SOAK{self.tag}{i:010d}"

    def _worker(self) -> None:
        while (job := self.work.get()) is not None:
            due, i, body, attempt = job
            late = time.monotonic() - due
            outcome, answer = self._post(body)
            latency = time.monotonic() - due
            ok = outcome == "2xx"
            with self.lock:
                self.window.latencies.append(latency)
                self.window.lateness.append(late)
                self.lateness.add(late)
                self.window.outcomes[outcome] += 1
                self.histogram.add(latency)
                self.counts["posts"] += 1
                self.counts[f"outcome_{outcome}"] += 1
                if ok:
                    self.counts["accepted"] += 1
                    if attempt == 0:
                        self.window.accepted_first += 1
                elif attempt < len(REDELIVERY_S):
                    self.counts["redeliveries"] += 1
                    self.redeliveries.append((time.monotonic() + REDELIVERY_S[attempt], i, body, attempt + 1))
                else:
                    self.counts["given_up"] += 1
            if ok and answer is not None:
                self._maybe_reply(answer)

    def _post(self, body: bytes) -> tuple[str, Any]:
        signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
        conn = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT_S)
        try:
            conn.request("POST", WEBHOOK_PATH, body, headers)
            answer = conn.getresponse()
            data = answer.read()
        except TimeoutError:
            return "timeout", None
        except OSError:
            return "error", None
        finally:
            conn.close()
        if not 200 <= answer.status < 300:
            return str(answer.status), None
        try:
            return "2xx", json.loads(data)
        except ValueError:
            return "2xx", None

    def _maybe_reply(self, summary: Any) -> None:
        """The landlord of a delivered message replies (REPLY_SHARE of them), a few seconds later."""
        messages = summary.get("messages") if isinstance(summary, dict) else None
        for m in messages or []:
            if m.get("routing_status") != "delivered" or m.get("duplicate"):
                continue
            with self.lock:
                self.counts["delivered"] += 1
                reply = self.rng.random() < REPLY_SHARE
                delay = self.rng.uniform(*REPLY_DELAY_S)
            if reply:
                self.landlords.schedule(time.monotonic() + delay, m["landlord_id"], m["conversation_id"])


class Landlords:
    """Landlords replying in their own authenticated transactions, each reply when it is due."""

    def __init__(self, url: str, threads: int = LANDLORD_THREADS):
        config = Config(database_url=url, environment="development", db_pool_min=1, db_pool_max=threads)
        self.pool = make_pool(config, open_now=True, name="bench-soak-landlords")
        self.rng = random.Random("soak:landlords")
        self.counts: Counter[str] = Counter()
        self.lock = threading.Condition()
        self.due: list[tuple[float, str, str]] = []
        self.stopping = False
        self.threads = [
            threading.Thread(target=self._worker, name=f"soak-landlord-{k}", daemon=True) for k in range(threads)
        ]
        for t in self.threads:
            t.start()

    def schedule(self, at: float, landlord_id: str, conversation_id: str) -> None:
        with self.lock:
            self.due.append((at, landlord_id, conversation_id))
            self.counts["scheduled"] += 1
            self.lock.notify()

    def waiting(self) -> int:
        """Replies scheduled and not yet done."""
        with self.lock:
            return self.counts["scheduled"] - self.counts["done"]

    def close(self) -> None:
        with self.lock:
            self.stopping = True
            self.lock.notify_all()
        for t in self.threads:
            t.join(timeout=15)
        self.pool.close()

    def _next(self) -> tuple[str, str] | None:
        with self.lock:
            while not self.stopping:
                now = time.monotonic()
                ready = [d for d in self.due if d[0] <= now]
                if ready:
                    first = min(ready)
                    self.due.remove(first)
                    return first[1], first[2]
                self.lock.wait(min((d[0] for d in self.due), default=now + 1.0) - now)
        return None

    def _worker(self) -> None:
        while (job := self._next()) is not None:
            landlord_id, conversation_id = job
            outcome = self.reply(landlord_id, conversation_id)
            with self.lock:
                self.counts[outcome] += 1
                self.counts["done"] += 1

    def reply(self, landlord_id: str, conversation_id: str) -> str:
        """send_whatsapp_message as the landlord (role authenticated, their claims), as the Data API runs it."""
        claims = {"sub": landlord_id, "role": "authenticated", "aud": "authenticated"}
        try:
            with transaction_as_user(self.pool, claims) as conn:
                conn.execute("select public.send_whatsapp_message(%s, %s)", [conversation_id, self.rng.choice(REPLIES)])
        except psycopg.Error as exc:
            return f"refused {exc.sqlstate}:{exc.diag.message_detail or ''}"
        return "queued"


# --- sampling ----------------------------------------------------------------------------------------

TABLE_STATS = """
select s.schemaname || '.' || s.relname as name, pg_table_size(s.relid) as table_bytes,
       pg_indexes_size(s.relid) as index_bytes, s.n_live_tup, s.n_dead_tup, s.n_tup_ins, s.n_tup_upd,
       s.n_tup_hot_upd, s.autovacuum_count, s.autoanalyze_count, c.reltuples,
       s.last_autovacuum is not null as vacuumed
from pg_stat_all_tables s join pg_class c on c.oid = s.relid
where s.relid = any(%s::regclass[])
"""
BACKENDS = "select pid, backend_type from pg_stat_activity"


class Sampler:
    """One sample of everything every `interval` seconds, on a thread of its own."""

    def __init__(self, system: System, tenants: Tenants, landlords: Landlords, scratch: Scratch, interval: float):
        self.system, self.tenants, self.landlords, self.interval = system, tenants, landlords, interval
        self.db = psycopg.connect(superuser_url(scratch.url), autocommit=True)
        self.postmaster = procs.parent(self.db.info.backend_pid)
        self.samples: list[Result] = []
        self.phase = "load"
        self.t0 = time.monotonic()
        self.last_t = self.t0
        self.last_cpu: dict[str, float] = {}
        self.last_buckets: dict[float, float] = {}
        self.last_machine = procs.machine_cpu_seconds()
        self.wal0 = self.wal_bytes()
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="soak-sampler", daemon=True)
        settings: dict[str, float] = dict(
            self.db.execute(
                "select name, setting::float from pg_settings where name in"
                " ('autovacuum_vacuum_threshold', 'autovacuum_vacuum_scale_factor')"
            ).fetchall()
        )
        self.av_threshold, self.av_scale = (
            settings["autovacuum_vacuum_threshold"],
            settings["autovacuum_vacuum_scale_factor"],
        )

    def start(self, t0: float) -> None:
        self.t0 = self.last_t = t0
        self.cpu(self.groups())  # the baseline of the first window
        self.last_machine = procs.machine_cpu_seconds()
        self.thread.start()

    def finish(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sample()
        self.db.close()
        if self.error is not None:
            raise self.error

    def _loop(self) -> None:
        k = 1
        while not self.stop.wait(max(0.0, self.t0 + k * self.interval - time.monotonic())):
            try:
                self.system.check()
                self.sample()
            except BaseException as exc:  # noqa: BLE001 - re-raised in finish(), the load is stopped meanwhile
                self.error = exc
                return
            k += 1

    def wal_bytes(self) -> int:
        row = self.db.execute("select wal_bytes from pg_stat_wal").fetchone()
        return int(row[0]) if row else 0

    def sample(self) -> None:
        now = time.monotonic()
        seconds, self.last_t = now - self.last_t, now
        w = self.tenants.take_window()
        lat = sorted(w.latencies)
        metrics, metrics_ms = self.scrape()
        fake = self.fake_stats()
        groups = self.groups()
        cpu = self.cpu(groups, seconds)
        buckets = histogram_buckets(metrics, "zenrent_webhook_request_seconds")
        statuses = fake.get("status_webhooks") or {}
        self.samples.append(
            rnd(
                {
                    "t": now - self.t0,
                    "phase": self.phase,
                    "webhook": {
                        "posts": len(lat),
                        "p50_ms": 1000 * (percentile(lat, 50) or 0),
                        "p99_ms": 1000 * (percentile(lat, 99) or 0),
                        "max_ms": 1000 * (lat[-1] if lat else 0),
                        "errors": sum(n for k, n in w.outcomes.items() if k != "2xx"),
                        "accepted_first": w.accepted_first,
                        "driver_late_p99_ms": 1000 * (percentile(sorted(w.lateness), 99) or 0),
                        "server_p99_ms": server_p99_ms(self.last_buckets, buckets),
                        "outcomes": dict(w.outcomes),
                    },
                    "inbound_per_s": w.accepted_first / seconds if seconds else 0,
                    "outbound": {
                        "queued": int(metric(metrics, "zenrent_outbound_queue_depth", state="queued")),
                        "sending": int(metric(metrics, "zenrent_outbound_queue_depth", state="sending")),
                        "needs_review": int(metric(metrics, "zenrent_outbound_queue_depth", state="needs_review")),
                        "oldest_queued_s": metric(metrics, "zenrent_outbound_oldest_queued_seconds"),
                    },
                    "media": {
                        "pending": int(metric(metrics, "zenrent_media_jobs_pending")),
                        "oldest_s": metric(metrics, "zenrent_media_oldest_pending_seconds"),
                        "stored": int(metric(metrics, "zenrent_media_jobs_stored_total", kind="download")),
                    },
                    "status_webhooks": {
                        "posted": sum(v for k, v in statuses.items() if k.startswith("posted_")),
                        "failed": statuses.get("failed", 0),
                        "pending": statuses.get("pending", 0),
                        "p99_ms": 1000 * ((statuses.get("window") or {}).get("p99_s") or 0),
                        "late_max_s": statuses.get("late_max_s", 0),
                        "applied": int(metric(metrics, "zenrent_status_updates_total", result="applied")),
                        "unmatched": int(metric(metrics, "zenrent_status_updates_total", result="pending")),
                    },
                    "replies": {"queued": self.landlords.counts["queued"], "done": self.landlords.counts["done"]},
                    "graph_sends": (fake.get("requests") or {}).get("messages", 0),
                    "metrics_ms": metrics_ms,
                    "memory_mb": self.memory(groups),
                    "cpu": cpu,
                    "machine": self.machine(cpu),
                    "tables": self.tables(),
                    "wal_mb": (self.wal_bytes() - self.wal0) / 1e6,
                }
            )
        )
        self.last_buckets = buckets

    def scrape(self) -> tuple[dict[str, list[tuple[dict[str, str], float]]], float]:
        """/metrics as Prometheus scrapes it: {sample name: [(labels, value)]} and the milliseconds it took."""
        request = urllib.request.Request(
            self.system.service_url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as answer:
            text = answer.read().decode()
        ms = 1000 * (time.perf_counter() - started)
        out: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
        return out, ms

    def fake_stats(self) -> Result:
        with urllib.request.urlopen(self.system.graph_url + "/_fake/stats", timeout=10) as answer:
            stats: Result = json.loads(answer.read())
        return stats

    def groups(self) -> dict[str, list[int]]:
        """Every process to watch, by name: the application's, the driver, Postgres's."""
        pids = self.system.pids()
        pids[DRIVER] = [os.getpid()]
        kinds: dict[int, str] = dict(self.db.execute(BACKENDS).fetchall())
        children = procs.children(self.postmaster) if self.postmaster else []
        pids["postgres backends"] = [p for p in children if kinds.get(p) == "client backend"]
        pids["postgres background"] = [p for p in children if kinds.get(p) != "client backend"]
        pids["postmaster"] = [self.postmaster] if self.postmaster else []
        return pids

    def memory(self, groups: dict[str, list[int]]) -> dict[str, Result]:
        """MB per process group: RSS, and private memory (what Postgres processes are judged by)."""
        out = {}
        for name, pids in groups.items():
            m = procs.total(pids)
            out[name] = {"rss": m.rss_mb, "anon": m.anon_mb, "n": len(pids)}
        return out

    def cpu(self, groups: dict[str, list[int]], seconds: float = 0.0) -> dict[str, float]:
        """Each group's CPU use over the window, in % of one core (backends that came and went are missed)."""
        used = {name: procs.cpu_seconds(pids) for name, pids in groups.items()}
        share = {
            name: 100 * max(0.0, used[name] - self.last_cpu.get(name, used[name])) / seconds if seconds else 0.0
            for name in used
        }
        self.last_cpu = used
        return share

    def machine(self, cpu: dict[str, float]) -> Result:
        """The whole machine over the window, in % of one core: busy, and busy with anything but the
        processes watched here (on a shared machine: other people's work); the 1-minute load average."""
        total, idle = procs.machine_cpu_seconds()
        (total0, idle0), self.last_machine = self.last_machine, (total, idle)
        elapsed = (total - total0) / (os.cpu_count() or 1)  # wall seconds, from the same counters
        busy = 100 * ((total - total0) - (idle - idle0)) / elapsed if elapsed > 0 else 0.0
        return {"busy_pct": busy, "others_pct": max(0.0, busy - sum(cpu.values())), "load1": os.getloadavg()[0]}

    def tables(self) -> dict[str, Result]:
        rows = self.db.execute(TABLE_STATS, [TABLES]).fetchall()
        out = {}
        for name, tb, ib, live, dead, ins, upd, hot, av, aa, reltuples, _ in rows:
            out[name] = {
                "table_mb": tb / 1e6,
                "index_mb": ib / 1e6,
                "live": live,
                "dead": dead,
                "inserted": ins,
                "updated": upd,
                "hot_updated": hot,
                "autovacuums": av,
                "autoanalyzes": aa,
                "av_trigger": self.av_threshold + self.av_scale * max(0.0, reltuples),
            }
        return out


Metrics = dict[str, list[tuple[dict[str, str], float]]]


def metric(metrics: Metrics, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 when there is none)."""
    return sum(v for lbl, v in metrics.get(name, []) if all(lbl.get(k) == x for k, x in labels.items()))


def histogram_buckets(metrics: Metrics, name: str) -> dict[float, float]:
    """A Prometheus histogram's cumulative bucket counts: {upper bound: count}."""
    out: dict[float, float] = {}
    for labels, v in metrics.get(name + "_bucket", []):
        le = float(labels["le"])
        out[le] = out.get(le, 0.0) + v
    return out


def server_p99_ms(before: dict[float, float], after: dict[float, float]) -> float | None:
    """The p99 of the service's own webhook timing (zenrent_webhook_request_seconds, tenants' and status
    webhooks alike) between two scrapes, interpolated within its bucket as Prometheus's histogram_quantile."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return None
    rank = 0.99 * counts[-1]
    lower, below = 0.0, 0.0
    for bound, seen in zip(bounds, counts, strict=True):
        if seen >= rank:
            if math.isinf(bound):
                return 1000 * lower
            return 1000 * (lower + (bound - lower) * (rank - below) / max(seen - below, 1e-9))
        lower, below = bound, seen
    return None


# --- the run -----------------------------------------------------------------------------------------


def measure(ctx: Context) -> Result:
    profile, scratch = ctx.profile, ctx.scratch
    work = ctx.work / "soak"
    work.mkdir(parents=True, exist_ok=True)
    tag = f"{int(time.time()) % 1_000_000:06d}"
    rng = random.Random(f"soak-photos:{tag}")
    # A clean start: the world was loaded without vacuuming (a live database is vacuumed regularly).
    scratch.execute("vacuum analyze")
    scratch.checkpoint()
    since = scratch.scalar("select now()")
    with System(scratch, work) as system:
        with quiet("httpx"):
            photos = register_photos(
                system.graph_url, [rng.randint(*PHOTO_SIZES) for _ in range(DISTINCT_PHOTOS)], ACCESS_TOKEN
            )
        landlords = Landlords(scratch.url)
        tenants = Tenants(system.service_url, ctx.world.tenants, photos, tag, landlords)
        sampler = Sampler(system, tenants, landlords, scratch, profile.soak_sample_s)
        stop = threading.Event()
        t0 = time.monotonic() + 0.5
        sampler.start(t0)
        log.info(
            "    soak: %d s at %g msg/s (%d%% photos, %d%% of delivered answered), sampled every %g s",
            profile.soak_s,
            RATE,
            MEDIA_SHARE * 100,
            REPLY_SHARE * 100,
            profile.soak_sample_s,
        )
        try:
            with progress(sampler, tenants, stop, every=max(profile.soak_sample_s, min(60.0, profile.soak_s / 10))):
                tenants.run(t0, profile.soak_s, stop)
            load_s = time.monotonic() - t0
            sampler.phase = "drain"
            drained_s = drain(system, tenants, landlords, sampler, DRAIN_S[profile.mode])
        finally:
            stop.set()
            tenants.close()
            landlords.close()
            sampler.finish()
        fake = sampler.fake_stats()
    totals = count(scratch, since, tenants, landlords, fake)
    samples = sampler.samples
    return {
        "world": ctx.world.name,
        "tenants": ctx.world.tenants,
        "messages_in_world": ctx.world.messages,
        "settings": {
            "rate": RATE,
            "media_share": MEDIA_SHARE,
            "reply_share": REPLY_SHARE,
            "reply_delay_s": list(REPLY_DELAY_S),
            "photo_bytes": list(PHOTO_SIZES),
            "distinct_photos": DISTINCT_PHOTOS,
            "status_delays_s": {"sent": 0.5, "delivered": 2.0, "read": 10.0},
            "gunicorn_workers": system.workers,
            "driver_threads": DRIVER_THREADS,
            "sample_s": profile.soak_sample_s,
            "load_s": round(load_s, 1),
            "drain_s": round(drained_s, 1),
        },
        "totals": totals,
        "summary": summarise(samples, tenants.histogram, tenants.lateness, load_s, totals),
        "samples": samples,
    }


@contextlib.contextmanager
def progress(sampler: Sampler, tenants: Tenants, stop: threading.Event, every: float) -> Iterator[None]:
    """A log line every `every` seconds while the load runs; stops the load if the sampler failed."""
    done = threading.Event()

    def loop() -> None:
        while not done.wait(every):
            if sampler.error is not None:
                stop.set()
                return
            if not sampler.samples:
                continue
            s = sampler.samples[-1]
            log.info(
                "    t=%4.0fs  %5.1f msg/s  p99 %6.1f ms  errors %d  outbound queued %d  media waiting %d  statuses %d",
                s["t"],
                s["inbound_per_s"],
                s["webhook"]["p99_ms"],
                tenants.counts["posts"] - tenants.counts["accepted"],
                s["outbound"]["queued"] + s["outbound"]["sending"],
                s["media"]["pending"],
                s["status_webhooks"]["posted"],
            )

    thread = threading.Thread(target=loop, name="soak-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def drain(system: System, tenants: Tenants, landlords: Landlords, sampler: Sampler, limit_s: float) -> float:
    """After the load: wait (at most `limit_s`) until redeliveries, replies, sends, status webhooks and
    photos are all done, as /metrics and the fake see them."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s and sampler.error is None:
        tenants.drain_redeliveries(until=time.monotonic())
        time.sleep(2.0)
        metrics, _ = sampler.scrape()
        fake = sampler.fake_stats().get("status_webhooks") or {}
        busy = {
            "webhooks": tenants.work.qsize() + len(tenants.redeliveries),
            "replies": landlords.waiting(),
            "outbound": metric(metrics, "zenrent_outbound_queue_depth", state="queued")
            + metric(metrics, "zenrent_outbound_queue_depth", state="sending"),
            "status webhooks": fake.get("pending", 0),
            "media": metric(metrics, "zenrent_media_jobs_pending"),
        }
        if not any(busy.values()):
            break
    else:
        log.info("    drain: still busy after %.0f s: %s", time.monotonic() - started, busy)
    return time.monotonic() - started


def count(scratch: Scratch, since: Any, tenants: Tenants, landlords: Landlords, fake: Result) -> Result:
    """What the database holds at the end, against what was sent."""
    inbound = scratch.execute(
        "select routing_status, count(*), count(*) filter (where type = 'image'),"
        " count(*) filter (where media_status = 'stored'), count(*) filter (where media_status = 'pending'),"
        " count(*) filter (where media_status = 'failed'), count(*) filter (where media_status is not null)"
        " from public.whatsapp_messages where wamid like %s group by 1",
        [f"wamid.SOAK{tenants.tag}%"],
    )
    outbound = scratch.execute(
        "select case when landlord_id is null then 'system' else 'landlord' end, status, count(*)"
        " from public.whatsapp_messages where direction = 'outgoing' and created_at >= %s group by 1, 2",
        [since],
    )
    by_status: dict[str, dict[str, int]] = {"landlord": {}, "system": {}}
    for who, status, n in outbound:
        by_status[who][status] = n
    statuses = fake.get("status_webhooks") or {}
    stored = sum(r[1] for r in inbound)
    return {
        "inbound": {
            "scheduled": tenants.counts["scheduled"],
            "posts": tenants.counts["posts"],
            "accepted": tenants.counts["accepted"],  # POSTs answered 2xx (a redelivery of a stored message too)
            "redeliveries": tenants.counts["redeliveries"],
            "given_up": tenants.counts["given_up"],
            "stored": stored,
            "lost": tenants.counts["scheduled"] - stored,
            "by_routing_status": {r[0]: r[1] for r in inbound},
            "outcomes": {k.removeprefix("outcome_"): v for k, v in tenants.counts.items() if k.startswith("outcome_")},
        },
        "photos": {
            "sent": tenants.counts["photos"],
            "stored_messages": sum(r[2] for r in inbound),
            "kept": sum(r[6] for r in inbound),  # a download queued (routing keeps no media of blocked phones)
            "not_kept": {r[0]: r[2] - r[6] for r in inbound if r[2] - r[6]},
            "stored": sum(r[3] for r in inbound),
            "pending": sum(r[4] for r in inbound),
            "failed": sum(r[5] for r in inbound),
        },
        "replies": {
            "delivered_messages": tenants.counts["delivered"],
            "scheduled": landlords.counts["scheduled"],
            "queued": landlords.counts["queued"],
            "refused": {k.removeprefix("refused "): v for k, v in landlords.counts.items() if k.startswith("refused")},
            "by_status": by_status["landlord"],
            "read": by_status["landlord"].get("read", 0),
        },
        "system_replies": by_status["system"],
        "graph": fake.get("requests") or {},
        "status_webhooks": {k: v for k, v in statuses.items() if k not in ("window", "late_max_s")},
        "unmatched_statuses": scratch.scalar("select count(*) from private.pending_message_statuses"),
    }


# --- analysis ----------------------------------------------------------------------------------------


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """The least-squares slope of (seconds, value) points, per hour."""
    if len(points) < 3:
        return None
    n = len(points)
    mx, my = sum(p[0] for p in points) / n, sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if sxx == 0:
        return None
    return 3600 * sum((p[0] - mx) * (p[1] - my) for p in points) / sxx


def verdict(points: list[tuple[float, float]], tolerance: tuple[float, float], short: bool) -> Result:
    """Whether a series grows over `points` (the second half of the load): its slope per hour against
    the larger of tolerance[0] and tolerance[1] x its median."""
    slope = slope_per_hour(points)
    values = sorted(p[1] for p in points)
    median = values[len(values) // 2] if values else 0.0
    limit = max(tolerance[0], tolerance[1] * median)
    if slope is None:
        word = "no data"
    elif short:
        word = "too short to tell"
    else:
        word = "growing" if slope > limit else "bounded"
    return {"slope_per_h": slope, "limit_per_h": limit, "verdict": word}


def summarise(
    samples: list[Result], histogram: Histogram, lateness: Histogram, load_s: float, totals: Result
) -> Result:
    load = [s for s in samples if s["phase"] == "load"]
    half = [s for s in load if s["t"] >= load_s / 2]
    short = load_s < SHORT_S
    memory = {}
    for name in load[0]["memory_mb"] if load else []:
        kind = "anon" if name.startswith("postgres") or name == "postmaster" else "rss"
        series = [(s["t"], s["memory_mb"][name][kind]) for s in load if name in s["memory_mb"]]
        memory[name] = {
            "measure": kind,
            "processes": f"{load[0]['memory_mb'][name]['n']} → {load[-1]['memory_mb'].get(name, {}).get('n', 0)}",
            "start_mb": series[0][1],
            "end_mb": series[-1][1],
            "max_mb": max(v for _, v in series),
            "cpu_pct": sum(s["cpu"].get(name, 0.0) for s in load[1:]) / max(1, len(load) - 1),
            **verdict([p for p in series if p[0] >= load_s / 2], MEMORY_TOLERANCE, short),
        }
    queue_series = [(s["t"], s["outbound"]["queued"] + s["outbound"]["sending"]) for s in half]
    media_series = [(s["t"], s["media"]["pending"]) for s in half]
    tables = {}
    for name in load[0]["tables"] if load else []:
        first, mid, last = load[0]["tables"][name], half[0]["tables"][name], load[-1]["tables"][name]
        dead = [(s["t"], s["tables"][name]["dead"]) for s in load]
        vacuumed_late = last["autovacuums"] > mid["autovacuums"]
        over = any(s["tables"][name]["dead"] > s["tables"][name]["av_trigger"] for s in half)
        tables[name] = {
            "start_mb": first["table_mb"] + first["index_mb"],
            "end_mb": last["table_mb"] + last["index_mb"],
            "table_growth_mb": last["table_mb"] - first["table_mb"],
            "index_growth_mb": last["index_mb"] - first["index_mb"],
            "inserted": last["inserted"] - first["inserted"],
            "updated": last["updated"] - first["updated"],
            "hot_share": ratio_or_none(last["hot_updated"] - first["hot_updated"], last["updated"] - first["updated"]),
            "autovacuums": last["autovacuums"] - first["autovacuums"],
            "dead_max": max(v for _, v in dead),
            "dead_end": last["dead"],
            "av_trigger_end": last["av_trigger"],
            "bytes_per_row_mid": per_row(mid),
            "bytes_per_row_end": per_row(last),
            "dead_tuples": dead_verdict(short, vacuumed_late, over),
        }
        bloat = ratio_or_none(tables[name]["bytes_per_row_end"], tables[name]["bytes_per_row_mid"])
        tables[name]["bytes_per_row_ratio"] = bloat
    inbound = totals["inbound"]
    webhook_errors = inbound["posts"] - inbound["accepted"]
    return rnd(
        {
            "load_s": load_s,
            "short": short,
            "webhook_ms": {
                "p50": 1000 * (histogram.percentile(50) or 0),
                "p99": 1000 * (histogram.percentile(99) or 0),
                "p999": 1000 * (histogram.percentile(99.9) or 0),
                "max": 1000 * histogram.max,
                "worst_window_p99": max((s["webhook"]["p99_ms"] for s in load), default=None),
                "driver_late_p99": 1000 * (lateness.percentile(99) or 0),
                "driver_late_max": 1000 * lateness.max,
                "worst_window_server_p99": max((s["webhook"]["server_p99_ms"] or 0 for s in load), default=None),
            },
            "inbound_per_s": sum(s["webhook"]["accepted_first"] for s in load) / load[-1]["t"] if load else None,
            "webhook_errors": webhook_errors,
            "max_outbound_queue": max((s["outbound"]["queued"] + s["outbound"]["sending"] for s in samples), default=0),
            "max_oldest_queued_s": max((s["outbound"]["oldest_queued_s"] for s in samples), default=0),
            "max_media_pending": max((s["media"]["pending"] for s in samples), default=0),
            "max_media_oldest_s": max((s["media"]["oldest_s"] for s in samples), default=0),
            "max_status_p99_ms": max((s["status_webhooks"]["p99_ms"] for s in samples), default=0),
            "max_status_late_s": max((s["status_webhooks"]["late_max_s"] for s in samples), default=0),
            "max_metrics_ms": max((s["metrics_ms"] for s in samples), default=0),
            "outbound_queue": verdict(queue_series, QUEUE_TOLERANCE, short),
            "media_queue": verdict(media_series, QUEUE_TOLERANCE, short),
            "memory": memory,
            "growing": sorted(name for name, m in memory.items() if m["verdict"] == "growing"),
            "tables": tables,
            "wal_mb": samples[-1]["wal_mb"] if samples else None,
            "machine": machine_summary(load),
            "wal_mb_per_s": load[-1]["wal_mb"] / load[-1]["t"] if load else None,
        }
    )


def machine_summary(load: list[Result]) -> Result | None:
    """The machine during the load: busy, and busy with other work (mean % of one core); the worst load average."""
    if not load or "machine" not in load[0]:
        return None
    n = len(load)
    return {
        "busy_pct": sum(s["machine"]["busy_pct"] for s in load) / n,
        "others_pct": sum(s["machine"]["others_pct"] for s in load) / n,
        "load1_max": max(s["machine"]["load1"] for s in load),
    }


def dead_verdict(short: bool, vacuumed_late: bool, over_trigger: bool) -> str:
    """Whether autovacuum keeps a table's dead tuples in check over the second half of the load."""
    if short:
        return "too short to tell"
    if vacuumed_late:
        return "vacuumed"
    return "not vacuumed: over the trigger" if over_trigger else "under the trigger"


def per_row(t: Result) -> float | None:
    return ratio_or_none(1e6 * (t["table_mb"] + t["index_mb"]), t["live"])


def ratio_or_none(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


# --- goals, plot and report ----------------------------------------------------------------------------


def goals(result: Result) -> list[Result]:
    s, t = result["summary"], result["totals"]
    replies = t["replies"]
    photos = t["photos"]
    out = [
        goal(
            f"p99 webhook latency at {RATE:g} msg/s (from the scheduled send)",
            s["webhook_ms"]["p99"],
            "<",
            GOAL_P99_MS,
            "ms",
        ),
        goal(f"inbound messages/s accepted (open loop at {RATE:g})", s["inbound_per_s"], ">=", 0.99 * RATE, "msg/s"),
        goal("messages lost (sent, not stored)", t["inbound"]["lost"], "==", 0, ""),
        goal("replies queued and not read at the end", replies["queued"] - replies["read"], "==", 0, ""),
        goal("status webhooks never answered 2xx", t["status_webhooks"].get("gave_up", 0), "==", 0, ""),
        goal("photos to keep not stored at the end", photos["kept"] - photos["stored"], "==", 0, ""),
        goal(
            "processes of production whose memory grows (service, sender, media worker, Postgres)",
            len([name for name in s["growing"] if name not in HARNESS]),
            "==",
            0,
            "",
        ),
    ]
    queues = [s["outbound_queue"], s["media_queue"]]
    out.append(goal("queues growing (outbound, media)", sum(q["verdict"] == "growing" for q in queues), "==", 0, ""))
    dead = [n for n, x in s["tables"].items() if x["dead_tuples"] == "not vacuumed: over the trigger"]
    out.append(goal("tables whose dead tuples outgrow autovacuum", len(dead), "==", 0, ""))
    return out


def plot(result: Result) -> Figure | None:
    samples = result["samples"]
    if not samples:
        return None
    fig, axes = plt.subplots(3, 2, figsize=(13, 11))
    t = [s["t"] / 60 for s in samples]
    end = result["summary"]["load_s"] / 60
    lat, rate, queues, memory, size, dead = axes.flat

    def posted(get: Callable[[Result], float | None]) -> list[float]:
        return [(get(s) or math.nan) if s["webhook"]["posts"] else math.nan for s in samples]

    lat.plot(t, posted(lambda s: s["webhook"]["p50_ms"]), label="p50")
    lat.plot(t, posted(lambda s: s["webhook"]["p99_ms"]), label="p99")
    lat.plot(t, posted(lambda s: s["webhook"]["max_ms"]), label="max", lw=0.7, alpha=0.6)
    lat.plot(t, posted(lambda s: s["webhook"]["server_p99_ms"]), label="p99 inside the service", lw=0.8, ls="--")
    lat.plot(t, posted(lambda s: s["status_webhooks"]["p99_ms"]), label="status webhooks p99", lw=0.8, ls=":")
    lat.plot(t, [s["metrics_ms"] for s in samples], label="the /metrics scrape", color="black", lw=0.6, alpha=0.5)
    lat.axhline(GOAL_P99_MS, color="grey", lw=0.8, ls=":")
    if "machine" in samples[0]:  # recorded since the first full run
        busy = lat.twinx()
        busy.fill_between(t, [s["machine"]["others_pct"] for s in samples], color="grey", alpha=0.15, lw=0)
        busy.set(ylim=(0, 100 * (os.cpu_count() or 1)), ylabel="CPU used by other work on the machine (% of a core)")
    lat.set(yscale="log", ylabel="ms", title="Tenants' webhooks: latency per window (from the scheduled send)")

    rate.plot(t, [s["inbound_per_s"] for s in samples], label="inbound accepted/s")
    rate.plot(t[1:], deltas(samples, lambda s: s["replies"]["queued"]), label="replies queued/s")
    rate.plot(t[1:], deltas(samples, lambda s: s["graph_sends"]), label="sends to Graph/s")
    rate.plot(t[1:], deltas(samples, lambda s: s["status_webhooks"]["posted"]), label="status webhooks/s")
    rate.plot(t[1:], deltas(samples, lambda s: s["media"]["stored"]), label="photos stored/s")
    rate.set(ylabel="per second", title="Throughput")

    queues.plot(
        t, [s["outbound"]["queued"] + s["outbound"]["sending"] for s in samples], label="outbound queued+sending"
    )
    queues.plot(t, [s["media"]["pending"] for s in samples], label="media jobs waiting")
    queues.plot(
        t, [s["status_webhooks"]["pending"] for s in samples], label="status webhooks scheduled or late", lw=0.8
    )
    age = queues.twinx()
    age.plot(t, [s["outbound"]["oldest_queued_s"] for s in samples], color="grey", lw=0.8, ls=":")
    age.set_ylabel("oldest queued reply (s, dotted)")
    queues.set(ylabel="items", title="Queues (from /metrics)")

    for name, m in result["summary"]["memory"].items():
        kind = m["measure"]
        series = [s["memory_mb"].get(name, {}).get(kind, math.nan) for s in samples]
        memory.plot(t, [v - series[0] for v in series], label=f"{name} ({kind}, {series[0]:.0f} MB at first)")
    memory.set(ylabel="MB since the first sample", title="Memory per process (RSS; Postgres: private)")

    for name in samples[0]["tables"]:
        first = samples[0]["tables"][name]
        base = first["table_mb"] + first["index_mb"]
        size.plot(
            t, [s["tables"][name]["table_mb"] + s["tables"][name]["index_mb"] - base for s in samples], label=name
        )
    size.set(ylabel="MB since the start", title="Table + index size growth")

    for k, name in enumerate(samples[0]["tables"]):
        line = dead.plot(t, [max(1, s["tables"][name]["dead"]) for s in samples], label=name)[0]
        marks = [t[i] for i in range(1, len(samples)) if changed(samples, i, name)]
        dead.plot(marks, [1.3 + 0.25 * k] * len(marks), "|", color=line.get_color(), ms=8)
    dead.set(yscale="log", ylabel="dead tuples (| autovacuum ran)", title="Dead tuples and autovacuum")

    for ax in axes.flat:
        ax.axvline(end, color="grey", lw=0.8, ls="--")
        ax.set_xlabel("minutes (dashed: load stops, drain)")
        ax.legend(fontsize=6, loc="upper left")
    return fig


def deltas(samples: list[Result], get: Callable[[Result], float]) -> list[float]:
    return [
        max(0.0, (get(b) - get(a)) / (b["t"] - a["t"])) if b["t"] > a["t"] else 0.0
        for a, b in itertools.pairwise(samples)
    ]


def changed(samples: list[Result], i: int, table: str) -> bool:
    return bool(samples[i]["tables"][table]["autovacuums"] > samples[i - 1]["tables"][table]["autovacuums"])


MEMORY_COLUMNS: list[Column] = [
    ("process", at("name")),
    ("measure", at("measure")),
    ("processes", at("processes")),
    ("start MB", at("start_mb")),
    ("end MB", at("end_mb")),
    ("max MB", at("max_mb")),
    ("2nd-half slope MB/h", at("slope_per_h")),
    ("tolerance MB/h", at("limit_per_h")),
    ("verdict", at("verdict")),
    ("CPU % of a core", at("cpu_pct")),
]

TABLE_COLUMNS: list[Column] = [
    ("table", at("name")),
    ("start MB", at("start_mb")),
    ("end MB", at("end_mb")),
    ("rows inserted", at("inserted")),
    ("rows updated", at("updated")),
    ("HOT", at("hot_share")),
    ("autovacuums", at("autovacuums")),
    ("dead max", at("dead_max")),
    ("dead at end", at("dead_end")),
    ("autovacuum trigger", at("av_trigger_end")),
    ("bytes/row mid → end", lambda x: f"{fmt_int(x['bytes_per_row_mid'])} → {fmt_int(x['bytes_per_row_end'])}"),
    ("dead tuples", at("dead_tuples")),
]


def fmt_int(v: float | None) -> str:
    return "\u2013" if v is None else f"{v:,.0f}"


def memory_table(result: Result) -> str:
    return columns_table(MEMORY_COLUMNS, [{"name": k} | v for k, v in result["summary"]["memory"].items()])


def tables_table(result: Result) -> str:
    return columns_table(TABLE_COLUMNS, [{"name": k} | v for k, v in result["summary"]["tables"].items()])


BENCHMARK = Benchmark(
    name="soak",
    measure=measure,
    worlds=("small",),
    goals=goals,
    plot=plot,
    report=lambda r: {"memory_table": memory_table, "tables_table": tables_table},
    only_when_named=True,
)

"""GET /metrics in Prometheus text format, for `Authorization: Bearer <ZR_METRICS_TOKEN>` only.

Anything else is 401 in the service's JSON error shape: the numbers say how busy ZenRent is and
how support is doing, and a scrape costs database queries. ZR_METRICS_TOKEN is a secret like the
others (app/config.py): required outside development, where a local default is used.

Works with several gunicorn workers: when PROMETHEUS_MULTIPROC_DIR is set (scripts/run sets it
and app/gunicorn_conf.py cleans up after dead workers), every worker writes its samples there
and /metrics aggregates them. Queue and backlog gauges are read from the database at scrape
time (public.whatsapp_service_gauges), so they are right whichever worker answers.

Metrics:
  zenrent_webhook_requests_total{status}          webhook POSTs by HTTP status code
  zenrent_webhook_request_seconds                  webhook POST latency (histogram)
  zenrent_messages_routed_total{routing_status}    new inbound messages by routing decision
  zenrent_message_duplicates_total                 redelivered messages (idempotent no-ops)
  zenrent_status_updates_total{result}             delivery statuses: applied / pending
  zenrent_webhook_dead_letters_total               signed bodies and items kept as dead letters (never retried)
  zenrent_db_pool_connections{state}               pool connections: size, available, waiting (sum over workers)
  zenrent_database_up                              1 when /metrics could read the database, else 0
  zenrent_held_messages                            held messages awaiting support
  zenrent_outbound_queue_depth{state}              outbound messages queued / sending / needs_review
  zenrent_outbound_oldest_queued_seconds           age of the oldest queued message
  zenrent_outbound_failed_24h{code}                failed sends in the last 24 h by Meta error code
  zenrent_webhook_errors_24h                       value.errors[] reported by Meta in the last 24 h
  zenrent_webhook_dead_letters_24h                 dead letters kept in the last 24 h (all workers, all sources)
  zenrent_media_jobs_pending                       media downloads and uploads waiting (a stopped media worker grows it)
  zenrent_media_oldest_pending_seconds             age of the oldest waiting media job
  zenrent_media_failed_24h{kind,code}              media jobs failed for good in 24 h by kind and error code
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from flask.typing import ResponseReturnValue
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from .db import Pool, fetch_one_committed
from .http_errors import error_response
from .logging_setup import log_event

log = logging.getLogger(__name__)
bp = Blueprint("metrics", __name__)

WEBHOOK_PATH = "/webhooks/whatsapp"

WEBHOOK_REQUESTS = Counter("zenrent_webhook_requests_total", "Webhook POSTs by HTTP status", ["status"])
WEBHOOK_SECONDS = Histogram(
    "zenrent_webhook_request_seconds",
    "Webhook POST latency",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ROUTED = Counter("zenrent_messages_routed_total", "New inbound messages by routing status", ["routing_status"])
DUPLICATES = Counter("zenrent_message_duplicates_total", "Redelivered inbound messages (no-ops)")
STATUSES = Counter("zenrent_status_updates_total", "Delivery statuses received", ["result"])
DEAD_LETTERS = Counter("zenrent_webhook_dead_letters_total", "Webhook bodies and items kept as dead letters")
POOL = Gauge("zenrent_db_pool_connections", "Database pool connections", ["state"], multiprocess_mode="livesum")


class DatabaseCollector:
    """Backlog gauges read from the database when Prometheus scrapes."""

    def __init__(self, pool: Pool):
        self.pool = pool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            # The gauges only: each an index lookup, so a scrape costs the same at any inbox size
            # (whatsapp_service_status() adds a day's scan, for the status page).
            row = fetch_one_committed(self.pool, "select public.whatsapp_service_gauges() as s", [])
            if row is None:
                raise LookupError("whatsapp_service_gauges() returned no row")
            s = row["s"]
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail because the database is down
            log.warning("metrics: database unavailable: %s", type(exc).__name__)
            up = GaugeMetricFamily("zenrent_database_up", "Database reachable from /metrics")
            up.add_metric([], 0)
            yield up
            return
        up = GaugeMetricFamily("zenrent_database_up", "Database reachable from /metrics")
        up.add_metric([], 1)
        yield up
        held = GaugeMetricFamily("zenrent_held_messages", "Held inbound messages awaiting support")
        held.add_metric([], s["held"])
        yield held
        depth = GaugeMetricFamily("zenrent_outbound_queue_depth", "Outbound messages by state", labels=["state"])
        for state in ("queued", "sending", "needs_review"):
            depth.add_metric([state], s[f"outbound_{state}"])
        yield depth
        oldest = GaugeMetricFamily("zenrent_outbound_oldest_queued_seconds", "Age of the oldest queued message")
        oldest.add_metric([], _age_seconds(s.get("oldest_queued_at")))
        yield oldest
        failed = GaugeMetricFamily("zenrent_outbound_failed_24h", "Failed sends in 24 h by Meta code", labels=["code"])
        for code, n in (s.get("outbound_failed_last_24h") or {}).items():
            failed.add_metric([code], n)
        yield failed
        errors = GaugeMetricFamily("zenrent_webhook_errors_24h", "Errors reported by Meta in webhooks, 24 h")
        errors.add_metric([], s["webhook_errors_last_24h"])
        yield errors
        dead = GaugeMetricFamily("zenrent_webhook_dead_letters_24h", "Webhook dead letters kept in the last 24 h")
        dead.add_metric([], _count(s.get("dead_letters_last_24h")))  # 0 until the database reports it
        yield dead
        media = GaugeMetricFamily("zenrent_media_jobs_pending", "Media downloads and uploads waiting")
        media.add_metric([], _count(s.get("media_pending")))
        yield media
        media_age = GaugeMetricFamily("zenrent_media_oldest_pending_seconds", "Age of the oldest waiting media job")
        media_age.add_metric([], _age_seconds(s.get("oldest_media_pending_at")))
        yield media_age
        media_failed = GaugeMetricFamily(
            "zenrent_media_failed_24h", "Media jobs failed for good in 24 h", labels=["kind", "code"]
        )
        for key, n in (s.get("media_failed_last_24h") or {}).items():
            kind, _, code = str(key).partition(":")
            media_failed.add_metric([kind, code], _count(n))
        yield media_failed


def _age_seconds(at: object) -> float:
    """Seconds since an ISO timestamp from the database (0 when there is none)."""
    if not isinstance(at, str) or not at:
        return 0.0
    return max((datetime.now(UTC) - datetime.fromisoformat(at)).total_seconds(), 0.0)


def _count(value: object) -> int:
    """A non-negative count from a summary or status value; anything else (missing, null, wrong type) is 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _count_summary(summary: dict[str, Any]) -> None:
    """Count what a 200 answer to a webhook says happened."""
    for m in summary.get("messages") or []:
        if m.get("duplicate"):
            DUPLICATES.inc()
        else:
            ROUTED.labels(m.get("routing_status") or "unknown").inc()
    for st in summary.get("statuses") or []:
        STATUSES.labels("applied" if st.get("applied") else "pending").inc()
    # A whole body the shim kept, or the items ingest_whatsapp_webhook kept (its `dead_letters`).
    DEAD_LETTERS.inc(1 if summary.get("dead_lettered") is True else _count(summary.get("dead_letters")))


def _record_pool(app: Flask) -> None:
    stats = app.extensions["zr_pool"].get_stats()
    POOL.labels("size").set(stats.get("pool_size", 0))
    POOL.labels("available").set(stats.get("pool_available", 0))
    POOL.labels("waiting").set(stats.get("requests_waiting", 0))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

    @app.before_request
    def _start_timer() -> None:
        if request.path == WEBHOOK_PATH and request.method == "POST":
            g.zr_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.pop("zr_started", None)
        if started is not None:
            WEBHOOK_SECONDS.observe(time.perf_counter() - started)
            WEBHOOK_REQUESTS.labels(str(response.status_code)).inc()
            summary = g.pop("zr_summary", None)  # set by app/webhook.py for a stored body
            if response.status_code == 200 and isinstance(summary, dict):
                _count_summary(summary)
        _record_pool(app)
        return response


def _refusal() -> tuple[Response, int] | None:
    """None for the right bearer token; else the 401 answer (constant-time comparison)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        code, message = "missing_token", "/metrics needs a bearer token"
    else:
        expected: str = current_app.config["ZR"].metrics_token
        if expected and hmac.compare_digest(token.strip().encode("utf-8"), expected.encode("utf-8")):
            return None
        code, message = "invalid_token", "the bearer token for /metrics is wrong"
    log_event(log, "metrics.refused", level=logging.WARNING, code=code)
    resp, status = error_response(401, code, message, "send Authorization: Bearer <ZR_METRICS_TOKEN>")
    resp.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return resp, status


@bp.get("/metrics")
def metrics() -> ResponseReturnValue:
    refused = _refusal()
    if refused is not None:
        return refused
    # Fresh registries per scrape: registering the database collector on the shared default
    # registry made concurrent scrapes (threaded servers) fail with "Duplicated timeseries".
    database = CollectorRegistry()  # auto_describe off: the database is read once, when generating
    database.register(DatabaseCollector(current_app.extensions["zr_pool"]))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        process = CollectorRegistry()
        MultiProcessCollector(process)
    else:
        process = REGISTRY  # single process: the default registry holds this process's metrics
    body = generate_latest(process) + generate_latest(database)
    return Response(body, mimetype=CONTENT_TYPE_LATEST)

"""The media worker: `python -m app.media` (scripts/run starts it next to the sender).

A tenant's photo, voice note, video, document or sticker reaches the webhook as a media id only;
Meta keeps the file for 7 days. For every media message, delivered or held, the router queues a
download job (private.media_jobs) and marks the message's media `pending`; this worker copies the
file into Supabase Storage (bucket whatsapp-media), where the landlord's app reads it under RLS
through signed URLs. Contract and guarantees: docs/media.md.

Loop: claim jobs with `public.claim_media_jobs` (FOR UPDATE SKIP LOCKED, committed before any
request: no two workers hold the same job; a job claimed more than 10 minutes ago is claimed
again, so a worker killed mid-download loses nothing), then, several jobs at once:
  * download: the MIME type must be one WhatsApp allows for the message type and the object path
    the claim returns must be a plain `<landlord>/<conversation>/<message>.<ext>` or
    `held/<message>.<ext>` (never a name anyone typed); GET /{version}/{media_id} with the bearer
    token; GET the url it returns with the token, streamed to a temporary file and aborted past
    the type's cap (image 5 MiB, audio and video 16 MiB, document 100 MiB, sticker 500 KiB); the
    SHA-256 must match the webhook's and Graph's; upload with storage3 (service key, upsert: a
    retry overwrites its own earlier copy) to that path; `public.complete_media_job`.
  * move: storage3 move from `held/...` to the landlord's folder once a held message is filed;
    complete (an earlier attempt that moved it but died before completing is recognised).
  * upload (a file a landlord sends, public.send_whatsapp_media): the MIME type must be one
    WhatsApp sends as the message's type and `from_path` a plain `<landlord>/outbound/...` name;
    storage3 reads the object (service key; its type and size checked against the type's cap
    before it is read), POST /{version}/{phone_number_id}/media names it by the object's last
    path segment (never text from the conversation); `public.complete_media_upload` records
    Meta's media id, and the sender sends the message by that id.
A failure calls `public.fail_media_job(job, code, retryable, retry_after)`: retryable ones
(Graph 5xx, network, an expired URL that stayed expired after fetching a new one twice, 429 and
Meta's throttling codes, Storage unavailable) come back with the database's backoff until Meta's
7 days run out; permanent ones (too_large, sha256_mismatch, mime_not_allowed, gone, ...) set the
message's media_status 'failed' with the code in media_error (and fail a landlord's queued message
whose file could not be uploaded).

Graph requests go through a token bucket (ZR_MEDIA_RATE per second); a throttling answer pauses
the whole worker for Retry-After (or 1, 2, 4 ... 60 s). SIGTERM / SIGINT: stop claiming, finish
the jobs in hand, exit 0. Metrics: zenrent_media_* counters (claimed, stored, failed by code,
bytes, seconds per job), in /metrics when the worker shares PROMETHEUS_MULTIPROC_DIR with the
service (scripts/run), and in `MediaWorker.stats` for tests and benchmarks.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import re
import sys
import tempfile
import threading
import time
from collections import Counter as Tally
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
from prometheus_client import Counter, Histogram
from psycopg_pool import PoolTimeout
from storage3 import SyncStorageClient
from storage3.exceptions import StorageApiError

from .config import (
    Config,
    ConfigError,
    check_db_pooler,
    db_pooler_from_env,
    default_database_url,
    is_development,
    secrets_from_env,
)
from .db import Pool, make_pool, transaction_as
from .graph_media import (
    Downloaded,
    GraphMediaClient,
    MediaFailure,
    MediaInfo,
    digest_matches,
    permanent,
    retryable,
)
from .logging_setup import configure_logging, log_event
from .media_types import MEDIA_TYPES, SENDABLE_TYPES, MediaKind, base_mime_type
from .sender import TokenBucket
from .signals import stop_on_signals

log = logging.getLogger("app.media")

_DB_TRANSIENT = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)
#: The shape of every object path a claim may return (ids and an extension; no user text).
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\.[a-z0-9]{1,8}\Z")


def checked_object_path(path: str | None) -> str:
    """The claim's object path if it is `held/<file>` or `<id>/<id>/<file>` made of ids; else
    invalid_path (never a document's filename, never `..`, never a leading slash)."""
    parts = (path or "").split("/")
    folders, file = parts[:-1], parts[-1]
    shape_ok = (folders == ["held"]) or (len(folders) == 2 and all(_SEGMENT.match(f) for f in folders))
    if not shape_ok or not _FILE.match(file):
        raise permanent("invalid_path", f"the claim returned an unusable object path {path!r}")
    return "/".join(parts)


_UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f"\\]')


def checked_outbound_path(path: str | None) -> tuple[str, str]:
    """An upload job's `from_path` and the filename Meta gets (its last segment) if the path is
    `<landlord>/outbound/.../<name>`; else invalid_path (no `.`/`..` or empty segment, no quote,
    backslash or control character: nothing that could leave the folder or the multipart header)."""
    value = path or ""
    parts = value.split("/")
    shape_ok = len(parts) >= 3 and _SEGMENT.match(parts[0]) is not None and parts[1] == "outbound"
    if not shape_ok or any(p in ("", ".", "..") for p in parts) or _UNSAFE_NAME.search(value) or len(value) > 1024:
        raise permanent("invalid_path", "the upload job names an unusable object path (see its from_path)")
    return value, parts[-1]


# -- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaConfig:
    """What the media worker runs with; `from_env` applies app.config's rule for secrets."""

    database_url: str
    supabase_url: str
    service_role_key: str
    access_token: str
    environment: str = "production"
    phone_number_id: str = "100000000000001"
    graph_api_base: str = "http://127.0.0.1:8089"
    graph_api_version: str = "v21.0"
    download_hosts: tuple[str, ...] = ("lookaside.fbsbx.com",)
    bucket: str = "whatsapp-media"
    rate: float = 20.0  # Graph requests (retrieve or download) per second
    concurrency: int = 4  # jobs in hand at once
    batch_size: int = 4  # jobs claimed at a time
    idle_s: float = 1.0  # pause when there is nothing to do
    http_timeout_s: float = 30.0  # between two reads of one response
    job_deadline_s: float = 300.0  # one download, well inside the 10-minute reclaim
    url_refetches: int = 2  # new URLs fetched when a download URL no longer works
    max_pause_while_claimed_s: float = 30.0  # a longer throttle pause hands the jobs back
    tmp_dir: str | None = None
    db_pool_timeout_s: float = 5.0
    db_statement_timeout_ms: int = 5000
    db_pooler: str = ""  # ZR_DB_POOLER, as app.config.Config.db_pooler

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MediaConfig:
        env = dict(os.environ if env is None else env)
        required = ("DATABASE_URL", "SUPABASE_URL") if not is_development(env) else ()
        secrets = secrets_from_env(env, ["WHATSAPP_ACCESS_TOKEN", "SUPABASE_SERVICE_ROLE_KEY"], also_required=required)
        d = cls("", "", "", "")
        hosts = env.get("ZR_MEDIA_DOWNLOAD_HOSTS")
        config = cls(
            database_url=default_database_url(env),
            supabase_url=(env.get("SUPABASE_URL") or "http://127.0.0.1:54325").rstrip("/"),
            service_role_key=secrets["SUPABASE_SERVICE_ROLE_KEY"],
            access_token=secrets["WHATSAPP_ACCESS_TOKEN"],
            environment=env.get("ZR_ENV") or "production",
            phone_number_id=env.get("WHATSAPP_PHONE_NUMBER_ID", d.phone_number_id),
            graph_api_base=env.get("GRAPH_API_BASE", d.graph_api_base).rstrip("/"),
            graph_api_version=env.get("GRAPH_API_VERSION", d.graph_api_version),
            download_hosts=tuple(h.strip() for h in hosts.split(",") if h.strip()) if hosts else d.download_hosts,
            bucket=env.get("ZR_MEDIA_BUCKET", d.bucket),
            rate=float(env.get("ZR_MEDIA_RATE", d.rate)),
            concurrency=int(env.get("ZR_MEDIA_CONCURRENCY", d.concurrency)),
            batch_size=int(env.get("ZR_MEDIA_BATCH_SIZE", d.batch_size)),
            idle_s=float(env.get("ZR_MEDIA_IDLE_S", d.idle_s)),
            http_timeout_s=float(env.get("ZR_MEDIA_HTTP_TIMEOUT_S", d.http_timeout_s)),
            job_deadline_s=float(env.get("ZR_MEDIA_JOB_DEADLINE_S", d.job_deadline_s)),
            tmp_dir=env.get("ZR_MEDIA_TMP_DIR") or None,
            db_pool_timeout_s=float(env.get("ZR_DB_POOL_TIMEOUT_S", d.db_pool_timeout_s)),
            db_statement_timeout_ms=int(env.get("ZR_DB_STATEMENT_TIMEOUT_MS", d.db_statement_timeout_ms)),
            db_pooler=db_pooler_from_env(env),
        )
        config.validate()
        return config

    def validate(self) -> None:
        check_db_pooler(self.db_pooler)
        if self.rate <= 0:
            raise ConfigError("ZR_MEDIA_RATE must be a positive number of requests per second")
        if self.concurrency < 1 or self.batch_size < 1:
            raise ConfigError("ZR_MEDIA_CONCURRENCY and ZR_MEDIA_BATCH_SIZE must be at least 1")
        if not 1 <= self.job_deadline_s <= 480:
            raise ConfigError("ZR_MEDIA_JOB_DEADLINE_S must be between 1 and 480 (jobs are reclaimed after 600 s)")

    def pool_config(self) -> Config:
        """The database settings in the shape app.db.make_pool takes (no secrets: it reads none)."""
        return Config(
            database_url=self.database_url,
            environment=self.environment,
            db_pool_min=1,
            db_pool_max=self.concurrency + 2,
            db_pool_timeout_s=self.db_pool_timeout_s,
            db_statement_timeout_ms=self.db_statement_timeout_ms,
            db_pooler=self.db_pooler,
        )


# -- jobs and outcomes -------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaJob:
    """One row of public.claim_media_jobs()."""

    job_id: int
    kind: str  # download | move | upload
    message_id: UUID
    media_id: str | None
    mime_type: str | None
    sha256: str | None
    media_type: str | None
    object_path: str | None
    from_path: str | None
    attempt_count: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> MediaJob:
        return cls(
            job_id=int(row["job_id"]),
            kind=str(row["kind"]),
            message_id=row["message_id"],
            media_id=row.get("media_id"),
            mime_type=row.get("mime_type"),
            sha256=row.get("sha256"),
            media_type=row.get("media_type"),
            object_path=row.get("object_path"),
            from_path=row.get("from_path"),
            attempt_count=int(row.get("attempt_count") or 0),
        )


@dataclass(frozen=True)
class Stored:
    path: str
    size: int | None  # None for a move: the size is already recorded
    media_id: str | None = None  # an upload: Meta's id of the file


Outcome = Stored | MediaFailure


# -- metrics -------------------------------------------------------------------------------------

JOBS_CLAIMED = Counter("zenrent_media_jobs_claimed_total", "Media jobs claimed", ["kind"])
JOBS_STORED = Counter("zenrent_media_jobs_stored_total", "Media jobs completed (stored or moved)", ["kind"])
JOBS_FAILED = Counter("zenrent_media_jobs_failed_total", "Failed media job attempts by code", ["code", "retryable"])
MEDIA_BYTES = Counter("zenrent_media_bytes_total", "Bytes copied: downloaded from Meta and stored, or uploaded to Meta")
JOB_SECONDS = Histogram(
    "zenrent_media_job_seconds",
    "Time to process one media job",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)


@dataclass
class MediaStats:
    """This worker's tallies (the Prometheus counters above sum every worker): for tests and benchmarks."""

    claimed: int = 0
    stored: int = 0
    bytes: int = 0
    failed: Tally[str] = field(default_factory=Tally)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def on_claimed(self, jobs: list[MediaJob]) -> None:
        with self._lock:
            self.claimed += len(jobs)
        for job in jobs:
            JOBS_CLAIMED.labels(job.kind).inc()

    def on_stored(self, job: MediaJob, stored: Stored, seconds: float) -> None:
        with self._lock:
            self.stored += 1
            self.bytes += stored.size or 0
        JOBS_STORED.labels(job.kind).inc()
        MEDIA_BYTES.inc(stored.size or 0)
        JOB_SECONDS.labels(job.kind).observe(seconds)

    def on_failed(self, job: MediaJob, failure: MediaFailure, seconds: float) -> None:
        with self._lock:
            self.failed[failure.code] += 1
        JOBS_FAILED.labels(failure.code, "true" if failure.retryable else "false").inc()
        JOB_SECONDS.labels(job.kind).observe(seconds)


# -- Storage ---------------------------------------------------------------------------------------


def storage_failure(exc: Exception) -> MediaFailure:
    """What a Storage answer means for the job (Storage puts its real status in the body)."""
    if isinstance(exc, StorageApiError):
        status, detail = str(exc.status), f"Storage {exc.status} {exc.code}: {exc.message}"
        if status == "413":
            return permanent("too_large", detail)
        if status == "415":
            return permanent("mime_not_allowed", detail)
        if status in ("400", "409", "422"):
            return permanent("storage_refused", detail)
        return retryable("storage_unavailable", detail)  # 401/403 (the key), 404 (the bucket), 5xx
    return retryable("storage_unavailable", f"Storage: {type(exc).__name__}")


class MediaStorage:
    """The whatsapp-media bucket through supabase-py's Storage client (storage3), with the service key."""

    def __init__(self, supabase_url: str, service_role_key: str, bucket: str, timeout_s: float = 60.0):
        headers = {"apikey": service_role_key, "Authorization": f"Bearer {service_role_key}"}
        self._http = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=5.0))
        self._client = SyncStorageClient(f"{supabase_url.rstrip('/')}/storage/v1/", headers, http_client=self._http)
        self.bucket = bucket

    @contextlib.contextmanager
    def _errors(self, missing: str | None = None) -> Iterator[None]:
        """Storage's answers as failures; with `missing`, an object that does not exist is gone."""
        try:
            yield
        except StorageApiError as exc:
            if missing is not None and str(exc.status) == "404" and exc.code == "not_found":
                raise permanent("gone", missing) from None
            raise storage_failure(exc) from None
        except (httpx.HTTPError, OSError) as exc:
            raise storage_failure(exc) from None

    def upload(self, name: str, file: Path, mime_type: str) -> None:
        """Upsert: a job retried after a crash overwrites its own earlier copy."""
        with self._errors():
            self._client.from_(self.bucket).upload(
                name, file, {"content-type": mime_type, "cache-control": "3600", "upsert": "true"}
            )

    def exists(self, name: str) -> bool:
        with self._errors():
            return self._client.from_(self.bucket).exists(name)

    def read(self, name: str, mime_type: str, cap: int) -> bytes:
        """An outbound file's bytes, once Storage says it is of `mime_type` and no larger than
        `cap` (so an oversize file is never read); gone when the object is missing (deleted)."""
        bucket = self._client.from_(self.bucket)
        with self._errors(missing="the file is no longer in Storage (deleted after sending?)"):
            info = bucket.info(name)
            stored_type = base_mime_type(info.get("content_type") or info.get("contentType"))
            size = info.get("size")
            if stored_type and stored_type != mime_type:
                raise permanent("mime_not_allowed", f"the object is {stored_type} now, it was sent as {mime_type}")
            if isinstance(size, int) and size > cap:
                raise permanent("too_large", f"{size} bytes, the cap is {cap}")
            data = bucket.download(name)
        if len(data) > cap:
            raise permanent("too_large", f"{len(data)} bytes, the cap is {cap}")
        return data

    def move(self, source: str, target: str) -> None:
        """Move, or recognise that an earlier attempt already did (source gone, target there)."""
        try:
            self._client.from_(self.bucket).move(source, target)
            return
        except StorageApiError as exc:
            if str(exc.status) not in ("404", "409"):
                raise storage_failure(exc) from None
        except (httpx.HTTPError, OSError) as exc:
            raise storage_failure(exc) from None
        # 404: no source; 409: the target exists. Either way an earlier attempt may have moved it.
        if not self.exists(target):
            raise permanent("gone", f"{source} is missing and {target} does not exist")
        if self.exists(source):  # both exist: the target was stored again meanwhile; the held copy goes
            with self._errors():
                self._client.from_(self.bucket).remove([source])

    def close(self) -> None:
        self._http.close()


# -- the worker --------------------------------------------------------------------------------------


class MediaWorker:
    def __init__(
        self,
        config: MediaConfig,
        pool: Pool,
        graph: GraphMediaClient | None = None,
        storage: MediaStorage | None = None,
        stop: threading.Event | None = None,
    ):
        self.config = config
        self.pool = pool
        self.graph = graph or GraphMediaClient(
            config.graph_api_base,
            config.graph_api_version,
            config.phone_number_id,
            config.access_token,
            download_hosts=config.download_hosts,
            timeout_s=config.http_timeout_s,
        )
        self.storage = storage or MediaStorage(config.supabase_url, config.service_role_key, config.bucket)
        self.stop = stop or threading.Event()
        self.bucket = TokenBucket(config.rate)
        self.stats = MediaStats()
        self._executor = ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="media")
        self._throttle_lock = threading.Lock()
        self._consecutive_throttles = 0

    # -- database ---------------------------------------------------------------------------
    def claim(self, batch_size: int) -> list[MediaJob]:
        with transaction_as(self.pool) as conn:
            rows = conn.execute("select * from public.claim_media_jobs(%s)", [batch_size]).fetchall()
        return [MediaJob.from_row(r) for r in rows]

    def _record(self, event: str, sql: str, params: list[Any], job: MediaJob) -> bool:
        """One RPC recording a job's result, retried while the database is unreachable. If it
        never lands, the job is claimed again after the reclaim timeout and done again (upsert)."""
        delays = [0.2, 0.5, 1, 2, 4]
        for attempt in range(len(delays) + 1):
            try:
                with transaction_as(self.pool) as conn:
                    conn.execute(sql, params)
                return True
            except _DB_TRANSIENT as exc:
                if attempt == len(delays):
                    log_event(log, event, level=logging.ERROR, job_id=job.job_id, error=type(exc).__name__)
                    return False
                time.sleep(delays[attempt])
            except psycopg.Error as exc:
                log_event(log, event, level=logging.ERROR, job_id=job.job_id, sqlstate=exc.sqlstate)
                return False
        return False

    def complete(self, job: MediaJob, stored: Stored) -> bool:
        if job.kind == "upload":
            return self._record(
                "media.complete_failed",
                "select public.complete_media_upload(%s, %s)",
                [job.job_id, stored.media_id],
                job,
            )
        return self._record(
            "media.complete_failed",
            "select public.complete_media_job(%s, %s, %s)",
            [job.job_id, stored.path, stored.size],
            job,
        )

    def fail(self, job: MediaJob, failure: MediaFailure) -> bool:
        return self._record(
            "media.fail_failed",
            "select public.fail_media_job(%s, %s, %s, %s)",
            [job.job_id, failure.code, failure.retryable, failure.retry_after_seconds],
            job,
        )

    # -- pacing -------------------------------------------------------------------------------
    def _pace(self) -> None:
        """One Graph request's token; a long back-off pause hands the job back instead of holding it."""
        if not self.bucket.acquire(cancel=self.stop, max_pause=self.config.max_pause_while_claimed_s):
            reason = "worker stopped" if self.stop.is_set() else "long rate-limit back-off"
            raise retryable(
                "throttled", f"not tried: {reason}", retry_after_seconds=math.ceil(self.bucket.paused_for())
            )

    def _throttled(self, failure: MediaFailure) -> float:
        """Pause every Graph request of this worker after a throttling answer; returns the pause."""
        with self._throttle_lock:
            self._consecutive_throttles += 1
            backoff = min(60.0, 2.0 ** (self._consecutive_throttles - 1))
        pause = float(failure.retry_after_seconds) if failure.retry_after_seconds is not None else backoff
        self.bucket.pause(pause)
        if failure.retry_after_seconds is None:
            failure.retry_after_seconds = math.ceil(pause)
        return pause

    # -- downloads ----------------------------------------------------------------------------
    def _download(self, job: MediaJob) -> Stored:
        kind = MEDIA_TYPES.get(job.media_type or "")
        mime_type = base_mime_type(job.mime_type)
        if kind is None or mime_type not in kind.mime_types:
            raise permanent("mime_not_allowed", f"{job.media_type} message with MIME type {mime_type or 'none'}")
        path = checked_object_path(job.object_path)
        if not job.media_id:
            raise permanent("gone", "the message has no media id")
        deadline = time.monotonic() + self.config.job_deadline_s
        with tempfile.TemporaryDirectory(dir=self.config.tmp_dir, prefix="zr-media-") as tmp:
            downloaded, info = self._fetch(job.media_id, kind, mime_type, Path(tmp) / "media", deadline)
            self._verify(job, info, downloaded)
            self.storage.upload(path, downloaded.path, mime_type)
        return Stored(path, downloaded.size)

    def _fetch(
        self, media_id: str, kind: MediaKind, mime_type: str, into: Path, deadline: float
    ) -> tuple[Downloaded, MediaInfo]:
        """Retrieve the URL and download it; an expired or refused URL is fetched anew."""
        expired: MediaFailure | None = None
        for _ in range(self.config.url_refetches + 1):
            self._pace()
            info = self.graph.retrieve(media_id)
            self._check_info(info, kind, mime_type)
            self._pace()
            try:
                return self.graph.download(info, kind.cap, into, deadline), info
            except MediaFailure as failure:
                if failure.code != "url_expired":
                    raise
                expired = failure
        assert expired is not None
        raise expired

    @staticmethod
    def _check_info(info: MediaInfo, kind: MediaKind, mime_type: str) -> None:
        graph_mime = base_mime_type(info.mime_type)
        if graph_mime and graph_mime != mime_type:
            raise permanent("mime_not_allowed", f"Graph says {graph_mime}, the webhook said {mime_type}")
        if info.file_size is not None and info.file_size > kind.cap:
            raise permanent("too_large", f"{info.file_size} bytes, the cap is {kind.cap}")

    @staticmethod
    def _verify(job: MediaJob, info: MediaInfo, downloaded: Downloaded) -> None:
        """The bytes must hash to what the webhook said and to what Graph says (whichever are given)."""
        for expected in (job.sha256, info.sha256):
            if expected and not digest_matches(expected, downloaded.sha256):
                raise permanent("sha256_mismatch", "the downloaded bytes do not match Meta's SHA-256")

    # -- moves --------------------------------------------------------------------------------
    def _move(self, job: MediaJob) -> Stored:
        source, target = checked_object_path(job.from_path), checked_object_path(job.object_path)
        if source != target:
            self.storage.move(source, target)
        return Stored(target, None)

    # -- uploads (files landlords send) -------------------------------------------------------
    def _upload(self, job: MediaJob) -> Stored:
        """Read the landlord's file from Storage and put it with Meta; Meta's id goes to the message."""
        kind = MEDIA_TYPES.get(job.media_type or "") if job.media_type in SENDABLE_TYPES else None
        mime_type = base_mime_type(job.mime_type)
        if kind is None or mime_type not in kind.mime_types:
            raise permanent("mime_not_allowed", f"WhatsApp cannot send {mime_type or 'a file'} as {job.media_type}")
        path, filename = checked_outbound_path(job.from_path)
        data = self.storage.read(path, mime_type, kind.cap)
        self._pace()
        media_id = self.graph.upload(io.BytesIO(data), filename, mime_type)
        return Stored(path, len(data), media_id)

    # -- one job ------------------------------------------------------------------------------
    def _do(self, job: MediaJob) -> Stored:
        if job.kind == "download":
            return self._download(job)
        if job.kind == "move":
            return self._move(job)
        if job.kind == "upload":
            return self._upload(job)
        # A kind newer SQL knows and this worker does not: keep it for a worker that does.
        raise retryable("unsupported_job", f"this worker does not do {job.kind!r} jobs")

    def process(self, job: MediaJob) -> Outcome:
        """Do one claimed job and record its result. Never raises."""
        started = time.monotonic()
        try:
            stored = self._do(job)
        except MediaFailure as failure:
            self._on_failure(job, failure, started)
            return failure
        except Exception as exc:  # a bug must not kill the worker: logged, and the job comes back
            log.exception("%s", f"event=media.bug job_id={job.job_id} error={type(exc).__name__}")
            bug = retryable("worker_error", type(exc).__name__)
            self._on_failure(job, bug, started)
            return bug
        with self._throttle_lock:
            self._consecutive_throttles = 0
        self.complete(job, stored)
        self.stats.on_stored(job, stored, time.monotonic() - started)
        where: dict[str, Any] = {"media_id": stored.media_id} if job.kind == "upload" else {"path": stored.path}
        log_event(
            log,
            "media.stored",
            job_id=job.job_id,
            kind=job.kind,
            message_id=job.message_id,
            **where,  # an outbound object's name may be one a landlord chose: not logged
            size=stored.size,
            attempt=job.attempt_count,
            ms=int((time.monotonic() - started) * 1000),
        )
        return stored

    def _on_failure(self, job: MediaJob, failure: MediaFailure, started: float) -> None:
        if failure.throttled:
            pause = self._throttled(failure)
            log_event(log, "media.throttled", level=logging.WARNING, job_id=job.job_id, pause_s=round(pause, 3))
        self.fail(job, failure)
        self.stats.on_failed(job, failure, time.monotonic() - started)
        log_event(
            log,
            "media.failed",
            level=logging.WARNING,
            job_id=job.job_id,
            kind=job.kind,
            message_id=job.message_id,
            code=failure.code,
            retryable=failure.retryable,
            http_status=failure.http_status,
            meta_code=failure.meta_code,
            detail=failure.detail,
            attempt=job.attempt_count,
        )

    # -- the loop -----------------------------------------------------------------------------
    def run_once(self) -> int:
        """Claim one batch and process it, jobs in parallel; returns how many jobs were claimed."""
        jobs = self.claim(self.config.batch_size)
        self.stats.on_claimed(jobs)
        wait([self._executor.submit(self.process, job) for job in jobs])
        return len(jobs)

    def run(self) -> None:
        log_event(log, "media.started", rate=self.config.rate, concurrency=self.config.concurrency)
        failures = 0
        while not self.stop.is_set():
            if not self.bucket.wait_unpaused(self.stop):
                break
            try:
                claimed = self.run_once()
                failures = 0
            except psycopg.Error as exc:
                failures += 1
                log_event(
                    log, "media.claim_failed", level=logging.WARNING, sqlstate=exc.sqlstate, error=type(exc).__name__
                )
            except PoolTimeout:
                failures += 1
                log_event(log, "media.claim_failed", level=logging.WARNING, error="PoolTimeout")
            else:
                if claimed == 0:
                    self.stop.wait(self.config.idle_s)
                continue
            self.stop.wait(min(30.0, self.config.idle_s * 2 ** min(failures, 5)))
        log_event(log, "media.stopped")

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.graph.close()
        self.storage.close()


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per job is ours (media.stored / media.failed)
    try:
        config = MediaConfig.from_env()
    except ConfigError as exc:
        log_event(log, "media.config_error", level=logging.ERROR, reason=str(exc))
        return 2
    pool = make_pool(config.pool_config(), name="zenrent-media")
    pool.open(wait=False)
    stop = stop_on_signals(log, "media")
    worker = MediaWorker(config, pool, stop=stop)
    try:
        worker.run()
    finally:
        worker.close()
        pool.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

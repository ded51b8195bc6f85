"""A small fake of the WhatsApp Cloud API: sending messages and media.

Runs on 127.0.0.1 on a free port in a background thread. It checks what Meta checks (path,
bearer token, JSON with messaging_product), records every request with its arrival time, and
answers like Meta:

* POST /{version}/{phone_number_id}/messages: 200 {"messages": [{"id": "wamid..."}]} by default,
  or whatever a test scripts (`fake.script(...)`, `fake.responder = ...`);
* GET /{version}/{media_id} (Retrieve Media URL): {"messaging_product", "url", "mime_type",
  "sha256", "file_size", "id"} for media a test registered with `fake.add_media(...)`; the url
  points back at this fake (/whatsapp_business/attachments/?mid=&ext=&hash=, like Meta's
  lookaside URLs) and expires after `fake.url_ttl_s` (300 s, as Meta's do);
* GET that url with the bearer token: the bytes (404 once expired or tampered with);
* POST /{version}/{phone_number_id}/media (multipart: messaging_product, type, file): {"id"}; the
  file becomes media the fake serves (`fake.media[id]`, with the filename it was sent under), or
  the next of `fake.script_uploads(...)`'s replies is the answer instead.

A registered `Media` can lie about its sha256 or size, be `gone` (404, error 131052), answer 500
for its next `down` requests, hand out already-expired URLs, or stall halfway through its bytes.
`fake.throttle_media(...)` turns on Meta's error-based throttle of the media endpoints: after
that many error answers in the window, every media request gets 429 with the configured code
and Retry-After until the block ends. `fake.hold()` keeps requests waiting until
`fake.release()` so a test can act while a request is in flight.

With `status_webhooks=StatusWebhooks(url, app_secret)` it also acts like Meta after a send: for
every message it accepts (200 with a wamid) it POSTs the three status webhooks Meta sends,
`sent`, `delivered` and `read`, each signed with the app secret (X-Hub-Signature-256) and echoing
`biz_opaque_callback_data`, at their delays after the answer (0.5 s, 2 s, 10 s by default), from
a few threads of its own; a delivery the webhook does not answer 2xx is tried again later, as
Meta does (here three times, after 5, 15 and 45 s). `max_recorded` keeps only the latest requests
in `fake.requests` (a long-running fake must not grow); `fake.stats()`, also served as
GET /_fake/stats (not Meta's), counts requests by kind and the status webhooks.

Run alone it stands in for Meta while trying the system locally (GRAPH_API_BASE's default):
    .venv/bin/python tests/fake_graph.py [PORT] [--quiet] [--status-webhook URL] [--max-recorded N]
    (default port 8089, prints each request unless --quiet; port 0: a free one, and the first line
    says "fake Graph API on http://127.0.0.1:PORT"; --status-webhook: post status webhooks there,
    signed with WHATSAPP_APP_SECRET; --max-recorded: requests kept, default 10,000)
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import io
import itertools
import json
import queue
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    at: float  # time.monotonic() on arrival
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or None
    raw: bytes

    @property
    def callback(self) -> str | None:
        return self.body.get("biz_opaque_callback_data") if isinstance(self.body, dict) else None


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)
    stall_after: int | None = None  # bytes: send this many, then wait for fake.unstall() and drop the connection


@dataclass
class Media:
    """A media object the fake can serve, and how it misbehaves."""

    data: bytes
    mime_type: str
    sha256: str | None = None  # what Graph reports; None: the real hex digest of data
    file_size: int | None = None  # what Graph reports; None: len(data)
    gone: bool = False  # Meta no longer has it: 404, error 131052
    down: int = 0  # answer the next `down` requests about it with 500
    expired_urls: int = 0  # the next `expired_urls` URLs handed out are already expired
    stall_after: int | None = None  # downloads send this many bytes, then stall until fake.unstall()
    downloads: int = 0  # downloads started
    filename: str | None = None  # the name it was uploaded under (POST /{phone_number_id}/media)


def meta_error(status: int, code: int, message: str, details: str = "", headers: dict[str, str] | None = None) -> Reply:
    """An error answer shaped like the Graph API's."""
    return Reply(
        status,
        {
            "error": {
                "message": message,
                "type": "OAuthException",
                "code": code,
                "error_data": {"messaging_product": "whatsapp", "details": details},
                "fbtrace_id": "AbCdEfGhIjK",
            }
        },
        headers or {},
    )


@dataclass(frozen=True)
class StatusWebhooks:
    """Where the fake posts Meta's status webhooks for the messages it accepts, and when."""

    url: str  # the webhook, e.g. http://127.0.0.1:8000/webhooks/whatsapp
    app_secret: str  # signs each body as Meta does (X-Hub-Signature-256)
    delays: tuple[tuple[str, float], ...] = (("sent", 0.5), ("delivered", 2.0), ("read", 10.0))
    retry_delays: tuple[float, ...] = (5.0, 15.0, 45.0)  # a delivery not answered 2xx is tried again
    display_phone_number: str = "447700000000"
    # Deliveries in flight at once: Meta delivers concurrently, so enough that a slow webhook makes the
    # statuses wait in its queue rather than throttling how many are sent (4 fell up to 160 s behind).
    threads: int = 32
    timeout_s: float = 10.0


@dataclass(order=True)
class _Delivery:
    due: float  # time.monotonic()
    seq: int
    status: str = field(compare=False)
    wamid: str = field(compare=False)
    recipient: str = field(compare=False)
    callback: str | None = field(compare=False)
    attempt: int = field(default=0, compare=False)


class StatusPoster:
    """Posts the status webhooks of StatusWebhooks: a scheduler thread hands each delivery, when it
    is due, to `threads` posting threads; counts what happened and times each POST."""

    def __init__(self, config: StatusWebhooks, phone_number_id: str):
        self.config = config
        self.phone_number_id = phone_number_id
        self.counts: Counter[str] = Counter()
        self._heap: list[_Delivery] = []
        self._cv = threading.Condition()
        self._seq = itertools.count()
        self._ready: queue.Queue[_Delivery | None] = queue.Queue()
        self._in_flight = 0
        self._latencies: list[float] = []  # since the last stats()
        self._late_max = 0.0  # since the last stats(): the longest a due delivery waited for a thread
        self._stopping = False
        self._threads = [threading.Thread(target=self._schedule_loop, name="fake-graph-statuses", daemon=True)]
        self._threads += [
            threading.Thread(target=self._post_loop, name=f"fake-graph-status-{i}", daemon=True)
            for i in range(config.threads)
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        for _ in range(self.config.threads):
            self._ready.put(None)

    def schedule(self, wamid: str, recipient: str, callback: str | None) -> None:
        """The statuses of one accepted message, each at its delay from now."""
        now = time.monotonic()
        with self._cv:
            for status, delay in self.config.delays:
                heapq.heappush(self._heap, _Delivery(now + delay, next(self._seq), status, wamid, recipient, callback))
                self.counts["scheduled"] += 1
            self._cv.notify()

    def stats(self) -> dict[str, Any]:
        """Counts so far; the POSTs since the last call (count, p50, p99, max seconds) and the worst lateness."""
        with self._cv:
            latencies, self._latencies = sorted(self._latencies), []
            late, self._late_max = self._late_max, 0.0
            pending = len(self._heap) + self._ready.qsize() + self._in_flight
            counts = dict(self.counts)

        def pct(p: float) -> float | None:
            return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else None

        return {
            **counts,
            "pending": pending,
            "window": {"posts": len(latencies), "p50_s": pct(0.5), "p99_s": pct(0.99), "max_s": pct(1.0)},
            "late_max_s": late,
        }

    def _schedule_loop(self) -> None:
        with self._cv:
            while not self._stopping:
                now = time.monotonic()
                while self._heap and self._heap[0].due <= now:
                    self._ready.put(heapq.heappop(self._heap))
                self._cv.wait(max(0.0, self._heap[0].due - now) if self._heap else None)

    def _post_loop(self) -> None:
        while (delivery := self._ready.get()) is not None:
            with self._cv:
                self._in_flight += 1
                self._late_max = max(self._late_max, time.monotonic() - delivery.due)
            try:
                self._post(delivery)
            finally:
                with self._cv:
                    self._in_flight -= 1

    def _post(self, d: _Delivery) -> None:
        raw = json.dumps(self._body(d), separators=(",", ":")).encode()
        signature = "sha256=" + hmac.new(self.config.app_secret.encode(), raw, hashlib.sha256).hexdigest()
        request = urllib.request.Request(
            self.config.url,
            data=raw,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
            method="POST",
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_s) as answer:
                answer.read()
                ok = 200 <= answer.status < 300
        except urllib.error.HTTPError as e:
            e.read()
            ok = False
        except OSError:
            ok = False
        with self._cv:
            self._latencies.append(time.perf_counter() - started)
            self.counts[f"posted_{d.status}"] += 1
            self.counts["ok" if ok else "failed"] += 1
            if ok:
                return
            if d.attempt >= len(self.config.retry_delays):
                self.counts["gave_up"] += 1
                return
            self.counts["retried"] += 1
            d.due, d.seq = time.monotonic() + self.config.retry_delays[d.attempt], next(self._seq)
            d.attempt += 1
            heapq.heappush(self._heap, d)
            self._cv.notify()

    def _body(self, d: _Delivery) -> dict[str, Any]:
        """One status as Meta sends it (conversation and pricing with sent and delivered)."""
        status: dict[str, Any] = {
            "id": d.wamid,
            "status": d.status,
            "timestamp": str(int(time.time())),
            "recipient_id": d.recipient,
        }
        if d.status in ("sent", "delivered"):
            status["conversation"] = {
                "id": hashlib.md5(d.recipient.encode()).hexdigest(),
                "expiration_timestamp": str(int(time.time()) + 86400),
                "origin": {"type": "service"},
            }
            status["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "service"}
        if d.callback is not None:
            status["biz_opaque_callback_data"] = d.callback
        metadata = {"display_phone_number": self.config.display_phone_number, "phone_number_id": self.phone_number_id}
        value = {"messaging_product": "whatsapp", "metadata": metadata, "statuses": [status]}
        return {
            "object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
        }


class FakeGraph:
    def __init__(
        self,
        access_token: str,
        phone_number_id: str,
        version: str,
        port: int = 0,
        status_webhooks: StatusWebhooks | None = None,
        max_recorded: int | None = None,
    ):
        self.access_token = access_token
        self.phone_number_id = phone_number_id
        self.version = version
        self.requests: list[Recorded] = []
        self.max_recorded = max_recorded
        self.counts: Counter[str] = Counter()  # requests by kind, however many are kept
        self._statuses = StatusPoster(status_webhooks, phone_number_id) if status_webhooks else None
        self.responder: Callable[[Recorded], Reply | None] | None = None
        self.media: dict[str, Media] = {}
        self.url_ttl_s = 300.0
        self._scripted: list[Reply] = []
        self._upload_replies: list[Reply] = []
        self._lock = threading.Condition()
        self._gate = threading.Event()
        self._gate.set()
        self._stall = threading.Event()
        self._ids = itertools.count(1)
        self._media_ids = itertools.count(1)
        self._url_key = hashlib.sha256(f"{access_token}:{time.time()}".encode()).digest()
        self._throttle: tuple[int, float, float, int, int] | None = None  # errors, window, block, status, code
        self._media_errors: list[float] = []
        self._blocked_until = 0.0
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-graph", daemon=True
        )

    # -- control --------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeGraph:
        self._thread.start()
        if self._statuses is not None:
            self._statuses.start()
        return self

    def stop(self) -> None:
        if self._statuses is not None:
            self._statuses.stop()
        self._gate.set()
        self._stall.set()
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._scripted.clear()
            self._upload_replies.clear()
            self.responder = None
            self.media.clear()
            self._throttle, self._media_errors, self._blocked_until = None, [], 0.0
        self._gate.set()
        self._stall.set()

    def stats(self) -> dict[str, Any]:
        """Requests by kind since the start, and the status webhooks (None without StatusWebhooks)."""
        with self._lock:
            counts = dict(self.counts)
        return {"requests": counts, "status_webhooks": self._statuses.stats() if self._statuses else None}

    # -- media control ----------------------------------------------------------------------
    def add_media(self, data: bytes, mime_type: str, media_id: str | None = None, **how: Any) -> str:
        """Register media (see `Media` for how it may misbehave); returns its id."""
        media_id = media_id or f"{9_000_000_000_000_000 + next(self._media_ids)}"
        with self._lock:
            self.media[media_id] = Media(data, mime_type, **how)
            if how.get("stall_after") is not None:
                self._stall.clear()
        return media_id

    def sha256_of(self, media_id: str) -> str:
        return hashlib.sha256(self.media[media_id].data).hexdigest()

    def throttle_media(
        self, after_errors: int = 20, window_s: float = 3600, block_s: float = 1800, code: int = 4, status: int = 429
    ) -> None:
        """Meta's error-based throttle of the media endpoints: `after_errors` error answers in
        `window_s` block every media request for `block_s` (429, `code`, Retry-After)."""
        with self._lock:
            self._throttle = (after_errors, window_s, block_s, status, code)

    def unstall(self) -> None:
        """Let stalled downloads go on (they drop the connection: the client sees a broken download)."""
        self._stall.set()

    def media_requests(self, media_id: str) -> list[Recorded]:
        """Retrieve-URL requests and downloads of one media id, in arrival order."""
        with self._lock:
            return [r for r in self.requests if media_id in (_media_id_of(r.path), _attachment_mid(r.path))]

    def script_uploads(self, *replies: Reply) -> None:
        """Answer the next uploads (POST /{phone_number_id}/media) with these replies, in order."""
        with self._lock:
            self._upload_replies.extend(replies)

    def uploads(self) -> list[Recorded]:
        """The upload requests, in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.path.endswith("/media")]

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order, then the default."""
        with self._lock:
            self._scripted.extend(replies)

    def hold(self) -> None:
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Recorded]:
        """Block until at least n requests arrived; returns them all."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"fake Graph API got {len(self.requests)} requests, expected {n}")
                self._lock.wait(left)
            return list(self.requests)

    def for_message(self, message_id: Any) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.callback == str(message_id)]

    # -- serving --------------------------------------------------------------------------
    def _answer(self, rec: Recorded) -> Reply:
        if rec.method == "GET" or rec.path == f"/{self.version}/{self.phone_number_id}/media":
            return self._answer_media(rec)
        expected_path = f"/{self.version}/{self.phone_number_id}/messages"
        if rec.method != "POST" or rec.path != expected_path:
            return meta_error(400, 100, f"Unsupported request to {rec.path}")
        if rec.headers.get("authorization") != f"Bearer {self.access_token}":
            return meta_error(401, 190, "Error validating access token")
        if not isinstance(rec.body, dict) or rec.body.get("messaging_product") != "whatsapp":
            return meta_error(400, 100, "(#100) The parameter messaging_product is required.")
        with self._lock:
            scripted = self._scripted.pop(0) if self._scripted else None
        if scripted is not None:
            return scripted
        if self.responder is not None:
            reply = self.responder(rec)
            if reply is not None:
                return reply
        wamid = f"wamid.FAKE{next(self._ids):08d}{int(time.time() * 1000) % 10**9:09d}"
        to = rec.body.get("to")
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": wamid}],
        }
        if rec.body.get("type") == "template":
            body["messages"][0]["message_status"] = "accepted"
        return Reply(200, body)

    # -- media ------------------------------------------------------------------------------
    def _answer_media(self, rec: Recorded) -> Reply:
        now = time.monotonic()
        with self._lock:
            if self._throttle is not None and now < self._blocked_until:
                _, _, _, status, code = self._throttle
                retry_after = str(max(1, int(self._blocked_until - now + 0.999)))
                return meta_error(
                    status,
                    code,
                    f"({code}) Application request limit reached",
                    "media throttled",
                    headers={"Retry-After": retry_after},
                )
        reply = self._media_reply(rec)
        if reply.status >= 400:
            self._count_media_error(now)
        return reply

    def _count_media_error(self, now: float) -> None:
        with self._lock:
            if self._throttle is None:
                return
            after, window, block, _, _ = self._throttle
            self._media_errors = [t for t in self._media_errors if t > now - window] + [now]
            if len(self._media_errors) >= after:
                self._blocked_until = now + block
                self._media_errors = []

    def _media_reply(self, rec: Recorded) -> Reply:
        parts = urlsplit(rec.path)
        if rec.method == "POST":
            return self._upload(rec)
        if rec.headers.get("authorization") != f"Bearer {self.access_token}":
            return meta_error(401, 190, "Error validating access token")
        if parts.path == "/whatsapp_business/attachments/":
            return self._download(parse_qs(parts.query))
        media_id = _media_id_of(rec.path)
        if media_id is None:
            return meta_error(400, 100, f"Unsupported request to {rec.path}")
        return self._retrieve(media_id)

    def _retrieve(self, media_id: str) -> Reply:
        with self._lock:
            media = self.media.get(media_id)
            if media is not None and media.down > 0:
                media.down -= 1
                return meta_error(500, 2, "(#2) Service temporarily unavailable")
            expired = media is not None and media.expired_urls > 0
            if expired and media is not None:
                media.expired_urls -= 1
        if media is None:
            unknown = meta_error(
                400,
                100,
                f"Unsupported get request. Object with ID '{media_id}' does not exist, cannot be loaded due to "
                "missing permissions, or does not support this operation.",
            )
            unknown.body["error"]["error_subcode"] = 33
            return unknown
        if media.gone:
            return meta_error(404, 131052, "(#131052) Media download error", "Media is no longer available")
        expires = int(time.time() + (-1 if expired else self.url_ttl_s))
        return Reply(
            200,
            {
                "messaging_product": "whatsapp",
                "url": f"{self.base_url}/whatsapp_business/attachments/?mid={media_id}&ext={expires}"
                f"&hash={self._url_hash(media_id, expires)}",
                "mime_type": media.mime_type,
                "sha256": media.sha256 or hashlib.sha256(media.data).hexdigest(),
                "file_size": media.file_size if media.file_size is not None else len(media.data),
                "id": media_id,
            },
        )

    def _download(self, query: dict[str, list[str]]) -> Reply:
        media_id, ext, sig = (query.get(k, [""])[0] for k in ("mid", "ext", "hash"))
        with self._lock:
            media = self.media.get(media_id)
        valid = ext.isdigit() and hmac.compare_digest(sig, self._url_hash(media_id, int(ext)))
        if media is None or media.gone or not valid or int(ext) < time.time():
            return Reply(404, b"URL signature expired", {"Content-Type": "text/plain"})
        with self._lock:
            media.downloads += 1
        return Reply(200, media.data, {"Content-Type": media.mime_type}, stall_after=media.stall_after)

    def _upload(self, rec: Recorded) -> Reply:
        if rec.headers.get("authorization") != f"Bearer {self.access_token}":
            return meta_error(401, 190, "Error validating access token")
        with self._lock:
            scripted = self._upload_replies.pop(0) if self._upload_replies else None
        if scripted is not None:
            return scripted
        form, files = _multipart(rec)
        if form.get("messaging_product") != "whatsapp":
            return meta_error(400, 100, "(#100) The parameter messaging_product is required.")
        upload = files.get("file")
        if upload is None:
            return meta_error(400, 100, "(#100) The parameter file is required.")
        data, mime_type, filename = upload
        return Reply(200, {"id": self.add_media(data, form.get("type") or mime_type, filename=filename)})

    def _report_statuses(self, rec: Recorded, reply: Reply) -> None:
        """After a message was accepted, Meta's status webhooks for it (with StatusWebhooks)."""
        if self._statuses is None or reply.status != 200 or not isinstance(reply.body, dict):
            return
        if _kind(rec) != "messages" or not isinstance(rec.body, dict):
            return
        messages = reply.body.get("messages") or [{}]
        wamid = messages[0].get("id")
        if isinstance(wamid, str):
            self._statuses.schedule(wamid, str(rec.body.get("to") or ""), rec.callback)

    def _url_hash(self, media_id: str, expires: int) -> str:
        return hmac.new(self._url_key, f"{media_id}:{expires}".encode(), "sha256").hexdigest()[:32]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                rec = Recorded(
                    time.monotonic(),
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    raw,
                )
                if rec.method == "GET" and rec.path == STATS_PATH:
                    self._send(Reply(200, fake.stats()))
                    return
                with fake._lock:
                    fake.requests.append(rec)
                    if fake.max_recorded is not None and len(fake.requests) > fake.max_recorded:
                        del fake.requests[: len(fake.requests) - fake.max_recorded]
                    fake.counts[_kind(rec)] += 1
                    fake._lock.notify_all()
                fake._gate.wait()
                reply = fake._answer(rec)
                fake._report_statuses(rec, reply)
                self._send(reply)

            def _send(self, reply: Reply) -> None:
                raw_body = isinstance(reply.body, (bytes, bytearray))
                out = (
                    bytes(reply.body) if raw_body else json.dumps(reply.body if reply.body is not None else {}).encode()
                )
                headers = {"Content-Type": "application/json", **reply.headers, "Content-Length": str(len(out))}
                try:
                    self.send_response(reply.status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    if reply.stall_after is not None:
                        self.wfile.write(out[: reply.stall_after])
                        self.wfile.flush()
                        fake._stall.wait(30)
                        self.close_connection = True
                        return
                    self.wfile.write(out)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client died meanwhile (crash tests, downloads aborted past a cap)

            do_POST = _handle
            do_GET = _handle

        return Handler


STATS_PATH = "/_fake/stats"  # the fake's own counters (FakeGraph.stats()), not Meta's


def _kind(rec: Recorded) -> str:
    """What a request is: messages, media_upload, media_retrieve, media_download or other."""
    path = urlsplit(rec.path).path
    if rec.method == "POST":
        return {"messages": "messages", "media": "media_upload"}.get(path.rstrip("/").rsplit("/", 1)[-1], "other")
    if path == "/whatsapp_business/attachments/":
        return "media_download"
    return "media_retrieve" if _media_id_of(rec.path) is not None else "other"


def _media_id_of(path: str) -> str | None:
    """The media id of GET /{version}/{media_id} (digits only, as Meta's ids)."""
    segments = urlsplit(path).path.strip("/").split("/")
    return segments[1] if len(segments) == 2 and segments[1].isdigit() else None


def _attachment_mid(path: str) -> str | None:
    parts = urlsplit(path)
    if parts.path != "/whatsapp_business/attachments/":
        return None
    return parse_qs(parts.query).get("mid", [None])[0]


def _multipart(rec: Recorded) -> tuple[dict[str, str], dict[str, tuple[bytes, str, str | None]]]:
    """The fields and files (bytes, MIME type, filename) of a multipart/form-data request body."""
    from werkzeug.formparser import parse_form_data

    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": rec.headers.get("content-type", ""),
        "CONTENT_LENGTH": str(len(rec.raw)),
        "wsgi.input": io.BytesIO(rec.raw),
    }
    _, form, files = parse_form_data(environ)
    return (
        {k: form[k] for k in form},
        {k: (f.read(), f.mimetype, f.filename) for k, f in files.items()},
    )


def main() -> None:
    import argparse
    import os

    parser = argparse.ArgumentParser(description="A fake of the WhatsApp Cloud API on 127.0.0.1 (tests/fake_graph.py).")
    parser.add_argument("port", nargs="?", type=int, default=8089, help="0: a free one (default 8089)")
    parser.add_argument("--quiet", action="store_true", help="only the first line (where it listens)")
    parser.add_argument(
        "--status-webhook",
        metavar="URL",
        help="post Meta's status webhooks (sent, delivered, read) there, signed with WHATSAPP_APP_SECRET",
    )
    parser.add_argument("--max-recorded", type=int, default=10_000, help="requests kept in memory (default 10,000)")
    args = parser.parse_args()
    statuses = None
    if args.status_webhook:
        secret = os.environ.get("WHATSAPP_APP_SECRET")
        if not secret:
            parser.error("--status-webhook needs WHATSAPP_APP_SECRET (the app secret the webhook checks)")
        statuses = StatusWebhooks(args.status_webhook, secret)
    fake = FakeGraph(
        os.environ.get("WHATSAPP_ACCESS_TOKEN", "local-access-token"),
        os.environ.get("WHATSAPP_PHONE_NUMBER_ID", "100000000000001"),
        os.environ.get("GRAPH_API_VERSION", "v21.0"),
        port=args.port,
        status_webhooks=statuses,
        max_recorded=args.max_recorded,
    )

    def show(rec: Recorded) -> None:
        print(json.dumps({"path": rec.path, "body": rec.body}), flush=True)
        return None

    if not args.quiet:
        fake.responder = show
    fake.start()
    print(f"fake Graph API on {fake.base_url}", flush=True)
    try:
        fake._thread.join()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()

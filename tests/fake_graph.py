"""A small fake of the WhatsApp Cloud API's POST /{version}/{phone_number_id}/messages.

Runs on 127.0.0.1 on a free port in a background thread. It checks what Meta checks (path,
bearer token, JSON with messaging_product), records every request with its arrival time, and
answers like Meta: 200 {"messages": [{"id": "wamid..."}]} by default, or whatever a test scripts
(`fake.script(...)`, `fake.responder = ...`). `fake.hold()` keeps requests waiting until
`fake.release()` so a test can act while a request is in flight.

Run alone it stands in for Meta while trying the system locally (GRAPH_API_BASE's default):
    .venv/bin/python tests/fake_graph.py [PORT]      # default 8089, prints each request
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


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
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


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


class FakeGraph:
    def __init__(self, access_token: str, phone_number_id: str, version: str, port: int = 0):
        self.access_token = access_token
        self.phone_number_id = phone_number_id
        self.version = version
        self.requests: list[Recorded] = []
        self.responder: Callable[[Recorded], Reply | None] | None = None
        self._scripted: list[Reply] = []
        self._lock = threading.Condition()
        self._gate = threading.Event()
        self._gate.set()
        self._ids = itertools.count(1)
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
        return self

    def stop(self) -> None:
        self._gate.set()
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._scripted.clear()
            self.responder = None
        self._gate.set()

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
                with fake._lock:
                    fake.requests.append(rec)
                    fake._lock.notify_all()
                fake._gate.wait()
                reply = fake._answer(rec)
                out = json.dumps(reply.body if reply.body is not None else {}).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(out)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client died meanwhile (crash tests)

            do_POST = _handle
            do_GET = _handle

        return Handler


def main() -> None:
    import os
    import sys

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8089
    fake = FakeGraph(
        os.environ.get("WHATSAPP_ACCESS_TOKEN", "local-access-token"),
        os.environ.get("WHATSAPP_PHONE_NUMBER_ID", "100000000000001"),
        os.environ.get("GRAPH_API_VERSION", "v21.0"),
        port=port,
    )

    def show(rec: Recorded) -> None:
        print(json.dumps({"path": rec.path, "body": rec.body}), flush=True)
        return None

    fake.responder = show
    fake.start()
    print(f"fake Graph API on {fake.base_url}", flush=True)
    try:
        fake._thread.join()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()

"""Serving the local stand-ins (Data API, Storage): a threaded werkzeug server on a loopback
address, started in a thread for tests or in the foreground for scripts/. Local only, never deployed."""

from __future__ import annotations

import ipaddress
import signal
import threading
from typing import TYPE_CHECKING, Any, Protocol, Self

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


class Closable(Protocol):
    def close(self) -> None: ...


def require_loopback(host: str) -> str:
    """The stand-ins serve this machine only."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ValueError(f"the local stand-ins listen on loopback addresses only, not {host!r}")
    return host


class QuietRequestHandler(WSGIRequestHandler):
    """The application logs one structured line per request; werkzeug's access log would repeat it."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class LocalServer:
    """A stand-in's WSGI application on a threaded werkzeug server; port 0 picks a free port
    (tests). `owned` is closed when the server stops (the application's database pool)."""

    thread_name = "local-stand-in"

    def __init__(self, wsgi: WSGIApplication, owned: Closable, host: str, port: int):
        self._owned = owned
        self._server: BaseWSGIServer = make_server(
            require_loopback(host), port, wsgi, threaded=True, request_handler=QuietRequestHandler
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        return f"http://{name}:{port}"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def serve_until_terminated(self) -> None:
        """Serve in the foreground (scripts/): until SIGTERM or Ctrl-C, then stop."""

        def on_term(signum: int, _frame: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, on_term)
        try:
            self.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
        self._owned.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

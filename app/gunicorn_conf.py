"""gunicorn settings for the webhook service: scripts/run starts ``gunicorn -c python:app.gunicorn_conf``."""

from __future__ import annotations

from typing import Any

from prometheus_client import multiprocess

#: The application: the Flask factory of the webhook service.
wsgi_app = "app.service:create_app()"


def child_exit(server: Any, worker: Any) -> None:  # gunicorn's hook signature; gunicorn has no type hints
    # A dead worker's live gauges must not be summed any more.
    multiprocess.mark_process_dead(worker.pid)

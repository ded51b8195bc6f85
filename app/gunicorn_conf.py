"""gunicorn settings for the webhook service (scripts/run: gunicorn -c python:app.gunicorn_conf)."""
from prometheus_client import multiprocess


def child_exit(server, worker):  # noqa: ARG001 - gunicorn's hook signature
    # A dead worker's live gauges must not be summed any more.
    multiprocess.mark_process_dead(worker.pid)

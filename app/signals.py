"""How the long-running workers (the sender, the media worker) stop: SIGTERM or SIGINT sets an
event their loop checks, so the job in hand finishes and nothing is left half-recorded."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from .logging_setup import log_event


def stop_on_signals(log: logging.Logger, event_prefix: str) -> threading.Event:
    """An event set by SIGTERM or SIGINT (logged as `<prefix>.signal`)."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log_event(log, f"{event_prefix}.signal", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop

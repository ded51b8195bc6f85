"""Structured logs: one line per event, `event=<name> key=value ...` (logfmt).

Only identifiers and decisions are logged (wamid, routing status, message id, error codes):
never message bodies, phone-number-free payloads, tokens or secrets.
"""

from __future__ import annotations

import logging
from typing import Any

_FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    """Idempotent: gunicorn workers and the sender call it once at start-up."""
    logging.basicConfig(level=level, format=_FORMAT)


def _value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    s = str(v)
    if s == "" or any(c in s for c in ' "=\\\n\t'):
        escaped = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        return f'"{escaped}"'
    return s


def kv(event: str, **fields: Any) -> str:
    """Render one event as logfmt: kv("webhook.message", wamid="wamid.X") -> 'event=webhook.message wamid=wamid.X'."""
    return " ".join([f"event={_value(event)}"] + [f"{k}={_value(v)}" for k, v in fields.items()])


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, "%s", kv(event, **fields))

"""The outbound sender: `python -m app.sender`.

Loop: claim queued messages (`public.claim_outbound_messages`, which marks them `sending` and
commits), POST each to the Graph API under a token-bucket rate limit, record the answer with
`public.complete_outbound_message`. Every few minutes `public.reconcile_stuck_outbound` hands
messages stuck in `sending` (the sender died mid-send) to a person instead of re-sending them.

Delivery guarantee: at most once per message (docs/sender.md). A message is re-sent only when
Meta said it was not sent (an error answer, or the connection failed before the request left).
SIGTERM / SIGINT: stop claiming, finish the messages already claimed, exit 0.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import replace

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import PoolTimeout

from .config import Config, ConfigError
from .db import Pool, make_pool, transaction_as
from .graph import GraphClient, InvalidMessage, OutboundMessage, Outcome, SendError, Sent, checked_payload
from .logging_setup import configure_logging, log_event
from .signals import stop_on_signals

log = logging.getLogger("app.sender")

_DB_TRANSIENT = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)


class TokenBucket:
    """At most `rate` acquisitions per second, in steady steps (capacity 1 by default: no bursts).

    `pause(s)` stops all acquisitions for `s` seconds (rate-limit back-off). Thread-safe.
    """

    def __init__(self, rate: float, capacity: float = 1.0, clock: Callable[[], float] = time.monotonic):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.capacity = max(1.0, float(capacity))
        self._clock = clock
        self._tokens = self.capacity
        self._last = clock()
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))

    def paused_for(self) -> float:
        with self._lock:
            return max(0.0, self._paused_until - self._clock())

    def _try_take(self) -> tuple[bool, float, bool]:
        """(taken, seconds to wait otherwise, whether the wait is a back-off pause)."""
        with self._lock:
            now = self._clock()
            if now < self._paused_until:
                self._last = self._paused_until  # nothing accrues during a pause:
                self._tokens = 1.0  # one message when it ends, then the steady rate
                return False, self._paused_until - now, True
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True, 0.0, False
            return False, (1.0 - self._tokens) / self.rate, False

    def acquire(self, cancel: threading.Event | None = None, max_pause: float = math.inf) -> bool:
        """Wait for a token. Returns False instead during a back-off pause that is longer than
        `max_pause` or is interrupted by `cancel`; ordinary pacing waits are never cut short."""
        while True:
            taken, delay, pausing = self._try_take()
            if taken:
                return True
            if pausing:
                if delay > max_pause:
                    return False
                if cancel is not None and cancel.wait(delay):
                    return False
                if cancel is None:
                    time.sleep(delay)
            else:
                time.sleep(delay)

    def wait_unpaused(self, cancel: threading.Event) -> bool:
        """Sleep through a back-off pause; False if `cancel` was set meanwhile."""
        while (left := self.paused_for()) > 0:
            if cancel.wait(left):
                return False
        return not cancel.is_set()


class Sender:
    def __init__(
        self,
        config: Config,
        pool: Pool,
        graph: GraphClient | None = None,
        stop: threading.Event | None = None,
    ):
        self.config = config
        self.pool = pool
        self.graph = graph or GraphClient(
            config.graph_api_base,
            config.graph_api_version,
            config.phone_number_id,
            config.access_token,
            timeout_s=config.sender_http_timeout_s,
        )
        self.stop = stop or threading.Event()
        self.bucket = TokenBucket(config.sender_rate)
        self._executor = ThreadPoolExecutor(max_workers=config.sender_concurrency, thread_name_prefix="sender")
        self._throttle_lock = threading.Lock()
        self._consecutive_throttles = 0
        # Never hold a claimed message through a pause anywhere near the stuck timeout.
        self._max_pause_while_claimed = min(30.0, config.sender_stuck_timeout_s / 4)

    # -- database ---------------------------------------------------------------------------
    def claim(self, batch_size: int) -> list[OutboundMessage]:
        with transaction_as(self.pool) as conn:
            rows = conn.execute("select * from public.claim_outbound_messages(%s)", [batch_size]).fetchall()
        return [OutboundMessage.from_row(r) for r in rows]

    def complete(self, msg: OutboundMessage, wamid: str | None, error: SendError | None) -> bool:
        """Record the result; retried while the database is unreachable (the wamid exists only here)."""
        payload = None if error is None else Jsonb(error.as_json())
        delays = [0.2, 0.5, 1, 2, 4, 8]
        for attempt in range(len(delays) + 1):
            try:
                with transaction_as(self.pool) as conn:
                    conn.execute(
                        "select public.complete_outbound_message(%s::uuid, %s::text, %s::jsonb)",
                        [msg.id, wamid, payload],
                    )
                return True
            except _DB_TRANSIENT as exc:
                if attempt == len(delays):
                    log_event(
                        log,
                        "sender.complete_failed",
                        level=logging.ERROR,
                        message_id=msg.id,
                        wamid=wamid,
                        error=type(exc).__name__,
                        note="left in sending; reconciled by status webhook or needs_review",
                    )
                    return False
                time.sleep(delays[attempt])
            except psycopg.Error as exc:
                if attempt > 0 and exc.sqlstate == "55000":
                    return True  # the earlier attempt did commit; only its answer was lost
                log_event(
                    log,
                    "sender.complete_refused",
                    level=logging.ERROR,
                    message_id=msg.id,
                    wamid=wamid,
                    sqlstate=exc.sqlstate,
                    reason=exc.diag.message_primary,
                )
                return False
        return False

    def reconcile(self) -> int | None:
        try:
            with transaction_as(self.pool) as conn:
                row = conn.execute(
                    "select public.reconcile_stuck_outbound(%s) as n", [self.config.sender_stuck_timeout_s]
                ).fetchone()
        except psycopg.Error as exc:
            log_event(
                log, "sender.reconcile_failed", level=logging.WARNING, error=type(exc).__name__, sqlstate=exc.sqlstate
            )
            return None
        except PoolTimeout:
            log_event(log, "sender.reconcile_failed", level=logging.WARNING, error="PoolTimeout")
            return None
        n = int(row["n"] or 0) if row else 0
        if n:
            log_event(log, "sender.reconciled", level=logging.WARNING, needs_review=n)
        return n

    # -- sending ----------------------------------------------------------------------------
    def _throttled(self, err: SendError) -> float:
        """Pause the whole sender after a rate-limit answer; returns the pause in seconds."""
        with self._throttle_lock:
            self._consecutive_throttles += 1
            backoff = min(60.0, 2.0 ** (self._consecutive_throttles - 1))
        pause = float(err.retry_after_seconds) if err.retry_after_seconds is not None else backoff
        self.bucket.pause(pause)
        return pause

    def send(self, msg: OutboundMessage) -> Outcome:
        """POST one claimed message and record the outcome. Never raises."""
        try:
            body = checked_payload(msg)
        except InvalidMessage as exc:
            err = SendError(0, f"invalid outbound message: {exc}", retryable=False)
            self.complete(msg, None, err)
            log_event(log, "sender.invalid", level=logging.ERROR, message_id=msg.id, reason=str(exc))
            return err
        if not self.bucket.acquire(cancel=self.stop, max_pause=self._max_pause_while_claimed):
            # A long back-off pause, or shutting down during one: hand the message back to the queue
            # rather than hold it claimed (it would look stuck) or send it late.
            reason = "sender stopped" if self.stop.is_set() else "long rate-limit back-off"
            err = SendError(
                0, f"not sent: {reason}", retryable=True, retry_after_seconds=math.ceil(self.bucket.paused_for())
            )
            self.complete(msg, None, err)
            log_event(log, "sender.handed_back", message_id=msg.id, reason=reason)
            return err
        outcome = self.graph.send(body)
        if isinstance(outcome, Sent):
            with self._throttle_lock:
                self._consecutive_throttles = 0
            self.complete(msg, outcome.wamid, None)
            log_event(log, "sender.sent", message_id=msg.id, wamid=outcome.wamid, attempt=msg.attempt_count)
        elif isinstance(outcome, SendError):
            if outcome.throttled:
                pause = self._throttled(outcome)
                if outcome.retry_after_seconds is None:
                    outcome = replace(outcome, retry_after_seconds=math.ceil(pause))
                log_event(
                    log,
                    "sender.throttled",
                    level=logging.WARNING,
                    message_id=msg.id,
                    code=outcome.code,
                    pause_s=round(pause, 3),
                )
            self.complete(msg, None, outcome)
            log_event(
                log,
                "sender.error",
                level=logging.WARNING,
                message_id=msg.id,
                code=outcome.code,
                http_status=outcome.http_status,
                retryable=outcome.retryable,
                title=outcome.title,
            )
        else:
            # Maybe sent: do not complete and do not retry. A status webhook carrying our id
            # (biz_opaque_callback_data) reconciles it, or reconcile_stuck_outbound flags it.
            log_event(log, "sender.outcome_unknown", level=logging.ERROR, message_id=msg.id, reason=outcome.reason)
        return outcome

    def _send_logged(self, msg: OutboundMessage) -> Outcome | None:
        try:
            return self.send(msg)
        except Exception as exc:
            log.exception("%s", f"event=sender.bug message_id={msg.id} error={type(exc).__name__}")
            return None

    def _send_in_order(self, messages: list[OutboundMessage]) -> None:
        for msg in messages:
            self._send_logged(msg)

    def run_once(self) -> int:
        """Claim one batch and send it; returns how many messages were claimed.

        Different recipients are sent to in parallel; one recipient's messages one after the
        other, in the order they were queued, so that a tenant reads them in that order.
        """
        messages = self.claim(self.config.sender_batch_size)
        by_recipient: dict[str, list[OutboundMessage]] = {}
        for msg in messages:
            by_recipient.setdefault(msg.to_phone, []).append(msg)
        wait([self._executor.submit(self._send_in_order, group) for group in by_recipient.values()])
        return len(messages)

    def run(self) -> None:
        log_event(
            log,
            "sender.started",
            rate=self.config.sender_rate,
            concurrency=self.config.sender_concurrency,
            url=self.graph.url,
        )
        next_reconcile = 0.0
        failures = 0
        while not self.stop.is_set():
            if time.monotonic() >= next_reconcile:
                self.reconcile()
                next_reconcile = time.monotonic() + self.config.sender_reconcile_interval_s
            if not self.bucket.wait_unpaused(self.stop):
                break
            try:
                claimed = self.run_once()
                failures = 0
            except _DB_TRANSIENT as exc:
                failures += 1
                log_event(log, "sender.claim_failed", level=logging.WARNING, error=type(exc).__name__)
                self.stop.wait(min(30.0, self.config.sender_idle_s * 2 ** min(failures, 5)))
                continue
            except psycopg.Error as exc:
                failures += 1
                log_event(
                    log,
                    "sender.claim_failed",
                    level=logging.ERROR,
                    sqlstate=exc.sqlstate,
                    reason=exc.diag.message_primary,
                )
                self.stop.wait(min(30.0, self.config.sender_idle_s * 2 ** min(failures, 5)))
                continue
            if claimed == 0:
                self.stop.wait(self.config.sender_idle_s)
        log_event(log, "sender.stopped")

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.graph.close()


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    try:
        config = Config.from_env()
    except ConfigError as exc:
        log_event(log, "sender.config_error", level=logging.ERROR, reason=str(exc))
        return 2
    # One connection per sending thread, one for claiming and reconciling.
    config = replace(config, db_pool_max=max(config.db_pool_max, config.sender_concurrency + 2))
    pool = make_pool(config, name="zenrent-sender")
    pool.open(wait=False)
    stop = stop_on_signals(log, "sender")
    sender = Sender(config, pool, stop=stop)
    try:
        sender.run()
    finally:
        sender.close()
        pool.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

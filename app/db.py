"""The one piece of global state: a psycopg connection pool, and transactions as a given role."""

from __future__ import annotations

import contextlib
import json
import logging
import time
import weakref
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from .config import POOLER_TRANSACTION, Config

log = logging.getLogger(__name__)

# Roles the service may act as. Never interpolate anything else into `set local role`.
_ROLES = {"service_role": "service_role"}

#: A pooled connection: every row is a dict (row_factory=dict_row).
DictConnection = psycopg.Connection[DictRow]


class Pool(ConnectionPool[DictConnection]):
    """The pool of each deploy unit: the service (webhook, console), the sender, the media worker.

    `transaction_settings` is what transaction_as and transaction_as_user set first in every
    transaction, with the role, in the same round trip: `set local statement_timeout = …` behind a
    transaction-mode pooler, where no setting may outlive the transaction; empty for a direct
    connection, which gets the timeout once, as a startup parameter."""

    def __init__(self, conninfo: str, *, transaction_settings: str = "", **kwargs: Any) -> None:
        self.transaction_settings = transaction_settings
        super().__init__(conninfo, **kwargs)


def connection_kwargs(config: Config) -> dict[str, Any]:
    """How each pooled connection is opened, for a direct connection or behind a pooler.

    Direct (ZR_DB_POOLER unset): the statement timeout is a startup parameter (`options`), and
    psycopg prepares a query it has run 5 times on that connection (prepare_threshold).
    ZR_DB_POOLER=transaction (Supavisor on port 6543, PgBouncer pool_mode = transaction): every
    transaction may run on another server connection, and consecutive ones of other clients on
    this one, so nothing may belong to the session. Prepared statements are named per session
    (psycopg's `_pg3_0`, ...): off (prepare_threshold=None), or they fail with 26000 / 42P05 on
    the next server connection. `options` is refused by PgBouncer 1.18 (and only dropped, not
    applied, if listed in ignore_startup_parameters): not sent; the timeout is set per
    transaction instead (Pool.transaction_settings). tests/test_pooler.py proves each of these.
    """
    kwargs: dict[str, Any] = {"autocommit": False, "row_factory": dict_row, "connect_timeout": 3}
    if config.db_pooler == POOLER_TRANSACTION:
        kwargs["prepare_threshold"] = None
    else:
        kwargs["options"] = f"-c statement_timeout={config.db_statement_timeout_ms}"
    return kwargs


def transaction_settings(config: Config) -> str:
    """What every transaction sets first (see Pool): the statement timeout behind a pooler."""
    if config.db_pooler == POOLER_TRANSACTION:
        return f"set local statement_timeout = {int(config.db_statement_timeout_ms)}"
    return ""


#: A connection returned to the pool less than this long ago is handed out again unchecked.
CHECK_IDLE_AFTER_S = 1.0


def check_if_idle(conn: DictConnection) -> None:
    """The pool's check when it hands out a connection: an empty query, but only for a connection
    that has sat idle (CHECK_IDLE_AFTER_S) or was never used, so that one broken by a database
    restart or an idle timeout is replaced instead of failing a request. A connection in use a
    moment ago was alive then: checking it would cost a round trip per webhook (bench: webhook_http)."""
    returned = _returned_at.get(conn)
    if returned is None or time.monotonic() - returned > CHECK_IDLE_AFTER_S:
        ConnectionPool.check_connection(conn)


def _note_return(conn: DictConnection) -> None:
    """The pool's reset callback: remember when the connection came back (for check_if_idle)."""
    _returned_at[conn] = time.monotonic()


_returned_at: weakref.WeakKeyDictionary[DictConnection, float] = weakref.WeakKeyDictionary()


def make_pool(config: Config, *, open_now: bool = False, name: str = "zenrent") -> Pool:
    """A pool that connects lazily, so the app starts even when the database is down.

    A connection that has been idle is checked (an empty query) when it is handed out, so that
    connections broken by a database restart are replaced instead of failing the next request
    (check_if_idle).
    """
    return Pool(
        config.database_url,
        transaction_settings=transaction_settings(config),
        connection_class=DictConnection,  # for the type checker: rows are dicts (kwargs says so at run time)
        min_size=config.db_pool_min,
        max_size=config.db_pool_max,
        kwargs=connection_kwargs(config),
        timeout=config.db_pool_timeout_s,
        check=check_if_idle,
        reset=_note_return,
        open=open_now,
        name=name,
    )


def _first_statements(role_statement: str, pool: Pool) -> str:
    """`set local role …` plus the pool's transaction settings: one round trip (no parameters,
    so psycopg sends it as one simple query)."""
    return f"{role_statement}; {pool.transaction_settings}" if pool.transaction_settings else role_statement


@contextlib.contextmanager
def transaction_as(pool: Pool, role: str = "service_role") -> Iterator[DictConnection]:
    """One transaction on a pooled connection, switched to an API role for its duration."""
    with pool.connection() as conn, conn.transaction():
        conn.execute(_first_statements(f"set local role {_ROLES[role]}", pool))
        yield conn


@contextlib.contextmanager
def transaction_as_user(pool: Pool, claims: dict[str, Any]) -> Iterator[DictConnection]:
    """One transaction as a signed-in user, exactly as PostgREST runs a request: role authenticated
    and the verified JWT claims in request.jwt.claims, so RLS and the RPCs' own checks decide."""
    if claims.get("role") != "authenticated":
        raise ValueError("transaction_as_user needs the claims of an authenticated user")
    with pool.connection() as conn, conn.transaction():
        conn.execute("select set_config('request.jwt.claims', %s, true)", [json.dumps(claims)])
        conn.execute(_first_statements("set local role authenticated", pool))
        yield conn


def call_rpc(pool: Pool, function: str, *args: Any, role: str = "service_role") -> Any:
    """Call one public RPC (a fixed, known name) in its own transaction and return its value."""
    placeholders = ", ".join(["%s"] * len(args))
    params = [json.dumps(a) if isinstance(a, (dict, list)) else a for a in args]
    row = fetch_one_committed(pool, f"select public.{function}({placeholders}) as result", params, role)
    return row["result"] if row else None


def fetch_one_committed(pool: Pool, query: str, params: list[Any], role: str = "service_role") -> DictRow | None:
    """One statement in its own transaction as an API role; its first row, returned once the COMMIT
    has succeeded. An error rolls the transaction back and raises, as in transaction_as. (Sending
    BEGIN, the role, the statement and COMMIT pipelined in one round trip was measured slower here:
    psycopg's pipeline costs more client CPU than the round trips it saves on loopback.)"""
    with transaction_as(pool, role) as conn:
        return conn.execute(query, params).fetchone()


def ping(pool: Pool) -> bool:
    try:
        with pool.connection(timeout=2) as conn:
            conn.execute("select 1")
        return True
    except Exception as exc:  # noqa: BLE001 - health is a yes/no question
        log.warning("database ping failed: %s", type(exc).__name__)
        return False

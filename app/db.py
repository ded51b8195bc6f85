"""The one piece of global state: a psycopg connection pool, and transactions as a given role."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from .config import Config

log = logging.getLogger(__name__)

# Roles the service may act as. Never interpolate anything else into `set local role`.
_ROLES = {"service_role": "service_role"}

#: A pooled connection: every row is a dict (row_factory=dict_row).
DictConnection = psycopg.Connection[DictRow]
#: The pool the service, the sender and the console share.
Pool = ConnectionPool[DictConnection]


def make_pool(config: Config, *, open_now: bool = False, name: str = "zenrent") -> Pool:
    """A pool that connects lazily, so the app starts even when the database is down.

    Each connection is checked (an empty query) when it is handed out, so that connections
    broken by a database restart are replaced instead of failing the next request.
    """
    return ConnectionPool(
        conninfo=config.database_url,
        connection_class=DictConnection,  # for the type checker: rows are dicts (kwargs says so at run time)
        min_size=config.db_pool_min,
        max_size=config.db_pool_max,
        kwargs={
            "autocommit": False,
            "row_factory": dict_row,
            "options": f"-c statement_timeout={config.db_statement_timeout_ms}",
            "connect_timeout": 3,
        },
        timeout=config.db_pool_timeout_s,
        check=ConnectionPool.check_connection,
        open=open_now,
        name=name,
    )


@contextlib.contextmanager
def transaction_as(pool: Pool, role: str = "service_role") -> Iterator[DictConnection]:
    """One transaction on a pooled connection, switched to an API role for its duration."""
    with pool.connection() as conn, conn.transaction():
        conn.execute(f"set local role {_ROLES[role]}")
        yield conn


@contextlib.contextmanager
def transaction_as_user(pool: Pool, claims: dict[str, Any]) -> Iterator[DictConnection]:
    """One transaction as a signed-in user, exactly as PostgREST runs a request: role authenticated
    and the verified JWT claims in request.jwt.claims, so RLS and the RPCs' own checks decide."""
    if claims.get("role") != "authenticated":
        raise ValueError("transaction_as_user needs the claims of an authenticated user")
    with pool.connection() as conn, conn.transaction():
        conn.execute("select set_config('request.jwt.claims', %s, true)", [json.dumps(claims)])
        conn.execute("set local role authenticated")
        yield conn


def call_rpc(pool: Pool, function: str, *args: Any, role: str = "service_role") -> Any:
    """Call one public RPC (a fixed, known name) in its own transaction and return its value."""
    placeholders = ", ".join(["%s"] * len(args))
    params = [json.dumps(a) if isinstance(a, (dict, list)) else a for a in args]
    with transaction_as(pool, role) as conn:
        row = conn.execute(f"select public.{function}({placeholders}) as result", params).fetchone()
    return row["result"] if row else None


def ping(pool: Pool) -> bool:
    try:
        with pool.connection(timeout=2) as conn:
            conn.execute("select 1")
        return True
    except Exception as exc:  # noqa: BLE001 - health is a yes/no question
        log.warning("database ping failed: %s", type(exc).__name__)
        return False

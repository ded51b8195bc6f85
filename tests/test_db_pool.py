"""The service's pool (app/db.py): one statement committed as a role, and connections checked only after idling."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import psycopg
import pytest

from app import db as dbmod
from app.config import Config
from tests.conftest import DATABASE_URL


@pytest.fixture()
def pool(config: Config) -> Iterator[dbmod.Pool]:
    p = dbmod.make_pool(dataclasses.replace(config, db_pool_min=1, db_pool_max=1), open_now=True)
    p.wait()
    yield p
    p.close()


def backend_pid(pool: dbmod.Pool) -> int:
    row = dbmod.fetch_one_committed(pool, "select pg_backend_pid() as pid", [])
    assert row is not None
    return int(row["pid"])


def terminate(pid: int) -> None:
    with psycopg.connect(DATABASE_URL, autocommit=True) as admin:
        admin.execute("select pg_terminate_backend(%s, 5000)", [pid])


def test_fetch_one_committed_runs_as_the_role_and_returns_after_commit(pool: dbmod.Pool) -> None:
    row = dbmod.fetch_one_committed(pool, "select current_user as who, now() = statement_timestamp() as t", [])
    assert row is not None and row["who"] == "service_role"
    with pool.connection() as conn:  # the role was local to the committed transaction
        assert conn.execute("select current_user as who").fetchone()["who"] != "service_role"
        conn.rollback()


def test_an_error_rolls_back_and_leaves_the_connection_usable(pool: dbmod.Pool) -> None:
    with pytest.raises(psycopg.errors.DivisionByZero):
        dbmod.fetch_one_committed(pool, "select 1 / 0 as x", [])
    row = dbmod.fetch_one_committed(pool, "select 2 as x", [])
    assert row == {"x": 2}


def test_an_idle_connection_killed_by_the_server_is_replaced_before_use(
    pool: dbmod.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminate(backend_pid(pool))
    monkeypatch.setattr(dbmod, "CHECK_IDLE_AFTER_S", 0.0)  # every connection counts as idle
    assert dbmod.call_rpc(pool, "whatsapp_service_status") is not None


def test_a_connection_used_a_moment_ago_is_not_checked_again(pool: dbmod.Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trade: no check round trip per request; a connection broken within CHECK_IDLE_AFTER_S of
    its last use fails one request (the webhook answers 503 and Meta delivers again), then the pool
    replaces it."""
    terminate(backend_pid(pool))
    monkeypatch.setattr(dbmod, "CHECK_IDLE_AFTER_S", 3600.0)
    with pytest.raises(psycopg.OperationalError):
        dbmod.call_rpc(pool, "whatsapp_service_status")
    assert dbmod.call_rpc(pool, "whatsapp_service_status") is not None

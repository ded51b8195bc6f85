"""Shared fixtures. The database is the one scripts/test (or scripts/db reset) prepared;
DATABASE_URL points at it. Nothing here starts a server by hand."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.rows import dict_row

from app.config import Config, default_database_url
from app.service import create_app

DATABASE_URL = default_database_url()


@pytest.fixture(scope="session")
def config() -> Config:
    return Config.from_env({"DATABASE_URL": DATABASE_URL})


@pytest.fixture()
def app(config):
    flask_app = create_app(config)
    flask_app.testing = True
    yield flask_app
    flask_app.extensions["zr_pool"].close()


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture()
def db():
    """A superuser connection whose work is rolled back after the test."""
    with psycopg.connect(DATABASE_URL, row_factory=dict_row) as conn:
        yield conn
        conn.rollback()

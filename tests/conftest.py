"""Shared fixtures. The database is the one scripts/test (or scripts/db reset) prepared;
DATABASE_URL points at it. Nothing here starts a server by hand.

The tests run with the built-in local secrets: ZR_ENV=development (app/config.py), for this
process and the subprocesses it starts, as scripts/test sets it. Tests of the production rules
pass their own environment to Config.from_env."""

from __future__ import annotations

import os

import psycopg
import pytest
from psycopg.rows import dict_row

from app.config import Config, default_database_url
from app.service import create_app

DATABASE_URL = default_database_url()
DEVELOPMENT = {"ZR_ENV": "development"}
os.environ.update(DEVELOPMENT)


@pytest.fixture(scope="session")
def config() -> Config:
    return Config.from_env({**DEVELOPMENT, "DATABASE_URL": DATABASE_URL})


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

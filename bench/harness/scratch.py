"""The scratch database: made on the server of DATABASE_URL, never the project database itself."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from app.config import default_admin_database_url, default_database_url
from bench.harness.paths import PLATFORM, REALTIME, ROOT, STORAGE

log = logging.getLogger(__name__)


def server_url() -> str:
    """The server to make scratch databases on: DATABASE_URL, else the local cluster of scripts/db."""
    return default_database_url()


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def superuser_url(url: str) -> str:
    """The platform's superuser on the database of `url`. postgres is not a superuser (as on
    hosted), so the platform bootstrap and benchmark hygiene (CHECKPOINT, auto_explain) use it."""
    return default_admin_database_url(urlsplit(url).path.lstrip("/"))


def checkpoint(url: str) -> None:
    """A CHECKPOINT on the cluster of `url`, so a measurement starts with clean buffers."""
    with psycopg.connect(superuser_url(url), autocommit=True) as conn:
        conn.execute("checkpoint")


def assert_loopback(url: str) -> None:
    """Benchmarks load whatever they point at: refuse anything but this machine."""
    host = urlsplit(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1") and not host.startswith(("127.", "/")):
        raise SystemExit(f"refusing to load-test {host!r}: benchmarks only target loopback addresses")


def psql_file(url: str, path: Path, variables: dict[str, Any] | None = None, quiet: bool = False) -> None:
    """Run a SQL file with psql (psql variables, \\set, \\echo); its output goes to the progress log."""
    cmd = ["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    for k, v in (variables or {}).items():
        cmd += ["-v", f"{k}={v}"]
    cmd += ["-f", str(path)]
    env = dict(os.environ, PGOPTIONS="-c client_min_messages=warning")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if not quiet and line.strip():
            log.info("  %s", line.strip())
    if proc.wait() != 0:
        raise RuntimeError(f"psql -f {path.name} failed:\n" + "".join(lines[-30:]))


class Scratch:
    """A scratch database on the server of `server`, dropped and recreated on demand."""

    def __init__(self, server: str, name: str):
        self.admin_url = with_database(server, "postgres")
        self.name = name
        self.url = with_database(server, name)
        assert_loopback(self.url)

    def admin(self, statement: sql.Composed) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(statement)

    def drop(self) -> None:
        self.admin(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(self.name)))

    def create_platform(self) -> None:
        """A fresh database with the Supabase platform (supabase/local/platform.sql, then Realtime's
        and Storage's schemas, supabase/local/realtime.sql and storage.sql) and no migration."""
        self.drop()
        self.admin(sql.SQL("create database {} template template0").format(sql.Identifier(self.name)))
        psql_file(superuser_url(self.url), PLATFORM, quiet=True)
        psql_file(superuser_url(self.url), REALTIME, quiet=True)
        psql_file(superuser_url(self.url), STORAGE, quiet=True)
        # Hosted Realtime reads realtime.messages from the WAL; the local stand-in's NOTIFY trigger
        # would serialise every broadcasting commit, which hosted never pays: off in benchmarks.
        with psycopg.connect(superuser_url(self.url), autocommit=True) as conn:
            conn.execute("alter table realtime.messages disable trigger messages_local_notify")

    def create(self) -> None:
        """A fresh database with the platform and every migration, as `supabase db push` applies them."""
        self.create_platform()
        cmd = ["supabase", "db", "push", "--db-url", self.url, "--include-all", "--yes"]
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError("supabase db push failed:\n" + out.stdout + out.stderr)

    def clone(self, name: str) -> Scratch:
        """A file copy of this database (which nobody may be connected to) under another name."""
        copy = Scratch(self.url, name)
        copy.drop()
        statement = sql.SQL("create database {} template {} strategy file_copy")
        self.admin(statement.format(sql.Identifier(name), sql.Identifier(self.name)))
        return copy

    def apply(self, path: Path) -> None:
        """Run a SQL file (a migration) in one round trip, as one transaction."""
        with psycopg.connect(self.url) as conn:
            conn.execute("set client_min_messages = warning")
            conn.execute(path.read_text())

    def execute(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def scalar(self, query: str, params: Any = None) -> Any:
        rows = self.execute(query, params)
        return rows[0][0] if rows else None

    def timed(self, query: str, params: Any = None) -> float:
        """Seconds one statement takes (on a connection opened beforehand)."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            start = time.perf_counter()
            conn.execute(query, params)
            return time.perf_counter() - start

    def checkpoint(self) -> None:
        checkpoint(self.url)

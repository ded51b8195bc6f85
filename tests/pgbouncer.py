"""A throwaway PgBouncer in front of the test database, for tests (and benchmarks) that need the
pooler Supabase puts in front of Postgres (Supavisor; PgBouncer on self-hosted and dedicated).

`PgBouncer(database_url, pools={"alias": size, ...}).start()` writes a pgbouncer.ini and a
userlist into a fresh directory, runs Debian's `pgbouncer` (scripts/setup installs it) in the
foreground on a free loopback port, and waits until it accepts connections; `stop()` ends it and
removes the directory. Each alias is a database entry for the same Postgres database with its
own server pool size, all in `pool_mode = transaction`: `url(alias)` is the connection string
through it. `admin()` opens its console (SHOW POOLS, SHOW SERVERS, ...).

Authentication: clients authenticate with SCRAM (auth_type = scram-sha-256) against a userlist
holding the one login user of DATABASE_URL and its password, which PgBouncer also uses to log in
to Postgres. Not `trust`: PgBouncer would still need the password in the userlist for the server
login, so trust saves nothing and would test less of what Supavisor does (it checks the password).

PgBouncer refuses to run as root: as root (the CI container) it is started with `-u postgres`, the
OS user of the local cluster, and its directory is handed to that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg
from psycopg.rows import dict_row

#: Where Debian's package puts the binary (not on a non-root user's PATH).
DEBIAN_BINARY = "/usr/sbin/pgbouncer"
START_TIMEOUT_S = 10.0
OS_USER_WHEN_ROOT = "postgres"


class PgBouncerMissing(RuntimeError):
    """pgbouncer is not installed."""


def find_binary() -> str:
    found = shutil.which("pgbouncer") or (DEBIAN_BINARY if os.access(DEBIAN_BINARY, os.X_OK) else None)
    if not found:
        raise PgBouncerMissing(
            "pgbouncer is not installed: run scripts/setup (it installs the Debian package pgbouncer)"
        )
    return found


def version(binary: str | None = None) -> str:
    """`pgbouncer --version`'s first line, e.g. 'PgBouncer 1.18.0'."""
    out = subprocess.run([binary or find_binary(), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[0].strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _quote(value: str) -> str:
    """A userlist field: double quotes, a literal `"` doubled."""
    return '"' + value.replace('"', '""') + '"'


class PgBouncer:
    """PgBouncer in transaction mode in front of `database_url`'s database, one alias per pool."""

    def __init__(
        self,
        database_url: str,
        pools: dict[str, int],
        *,
        settings: dict[str, str] | None = None,
    ):
        parts = urlsplit(database_url)
        if not parts.hostname or not parts.username:
            raise ValueError("database_url needs a host and a user")
        self._target = parts
        self.user = unquote(parts.username)
        self.password = unquote(parts.password or "")
        self.dbname = (parts.path or "/postgres").lstrip("/") or "postgres"
        self.pools = dict(pools)
        self.settings = dict(settings or {})
        self.port = 0
        self.dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # -- configuration -------------------------------------------------------------------
    def ini(self) -> str:
        host, port = self._target.hostname, self._target.port or 5432
        assert self.dir is not None
        databases = [
            f"{alias} = host={host} port={port} dbname={self.dbname} pool_size={size}"
            for alias, size in self.pools.items()
        ]
        settings = {
            "listen_addr": "127.0.0.1",
            "listen_port": str(self.port),
            "unix_socket_dir": "",  # TCP on loopback only
            "auth_type": "scram-sha-256",
            "auth_file": str(self.dir / "userlist.txt"),
            "admin_users": self.user,
            "pool_mode": "transaction",
            "default_pool_size": "2",
            "min_pool_size": "0",
            "reserve_pool_size": "0",
            "max_client_conn": "200",
            "logfile": str(self.dir / "pgbouncer.log"),
            "pidfile": str(self.dir / "pgbouncer.pid"),
            **self.settings,
        }
        return (
            "[databases]\n"
            + "\n".join(databases)
            + "\n\n[pgbouncer]\n"
            + "\n".join(f"{k} = {v}" for k, v in settings.items())
            + "\n"
        )

    def url(self, alias: str, *, user: str | None = None, password: str | None = None) -> str:
        """The connection string through PgBouncer to `alias`, as DATABASE_URL would be."""
        auth = f"{user or self.user}:{self.password if password is None else password}"
        return urlunsplit(("postgresql", f"{auth}@127.0.0.1:{self.port}", f"/{alias}", "sslmode=disable", ""))

    def admin(self) -> psycopg.Connection[dict[str, Any]]:
        """PgBouncer's admin console (the virtual database `pgbouncer`): SHOW commands, rows as dicts."""
        return psycopg.connect(self.url("pgbouncer"), autocommit=True, prepare_threshold=None, row_factory=dict_row)

    def log(self) -> str:
        path = self.dir / "pgbouncer.log" if self.dir else None
        return path.read_text(errors="replace") if path and path.exists() else ""

    # -- life cycle ----------------------------------------------------------------------
    def start(self) -> Self:
        binary = find_binary()
        last_error = ""
        for _attempt in range(3):  # a free port can be taken between finding it and binding it
            # As root, under /tmp itself: TMPDIR may be a root-only folder the postgres user cannot enter.
            self.dir = Path(tempfile.mkdtemp(prefix="zr-pgbouncer-", dir="/tmp" if os.geteuid() == 0 else None))
            self.port = _free_port()
            (self.dir / "userlist.txt").write_text(f"{_quote(self.user)} {_quote(self.password)}\n")
            (self.dir / "pgbouncer.ini").write_text(self.ini())
            cmd = [binary]
            if os.geteuid() == 0:
                os_user = pwd.getpwnam(OS_USER_WHEN_ROOT)
                for path in (self.dir, *self.dir.iterdir()):
                    os.chown(path, os_user.pw_uid, os_user.pw_gid)
                cmd += ["-u", OS_USER_WHEN_ROOT]
            cmd.append(str(self.dir / "pgbouncer.ini"))
            self._process = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            if self._wait_until_listening():
                return self
            last_error = self.log()
            self.stop()
        raise RuntimeError(f"pgbouncer did not start; its log:\n{last_error}")

    def _wait_until_listening(self) -> bool:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()  # SIGTERM: 1.18 closes every connection and exits; later ones wait for clients
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

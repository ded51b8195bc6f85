"""HTTP on loopback: a gunicorn server under test, wrk driving it (with a bench/*.lua script), single timed POSTs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness.numbers import rnd
from bench.harness.paths import ROOT
from bench.harness.scratch import assert_loopback


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Gunicorn:
    """gunicorn serving `app` ("module:create_app()") on a free loopback port, with `env` added."""

    def __init__(self, app: str, workers: int, env: dict[str, str], log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        cmd = [gunicorn, "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers), "--graceful-timeout", "5", app]
        self.log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=dict(os.environ, **env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, path: str, ok: Callable[[int], bool], timeout: float = 30.0) -> None:
        """Poll `path` until its HTTP status satisfies `ok`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see {self.log.name}")
            status = self.status(path)
            if status is not None and ok(status):
                return
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn on {self.url} not ready after {timeout}s; see {self.log.name}")

    def status(self, path: str) -> int | None:
        try:
            with urllib.request.urlopen(self.url + path, timeout=2) as r:
                return int(r.status)
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Process:
    """A process of its own (`cmd`, with `env` added, in the checkout, a session of its own), its
    output in `log_path`; stop() sends SIGTERM and waits (SIGKILL after 15 s)."""

    def __init__(self, cmd: list[str], env: dict[str, str], log_path: Path):
        self.log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=dict(os.environ, **env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check(self) -> None:
        """RuntimeError when the process has exited."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.proc.args!r} exited with {self.proc.returncode}; see {self.log.name}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Service(Process):
    """A local stand-in run as a process of its own (`cmd`, with `env` added) on a free loopback
    port, its output in `log_path`: what a benchmark measures against without sharing its GIL."""

    def __init__(self, cmd: list[str], env: dict[str, str], log_path: Path, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        super().__init__(cmd, env, log_path)

    def wait_ready(self, path: str, timeout: float = 30.0) -> None:
        """Poll `path` until anything answers over HTTP (an error status included)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            try:
                with urllib.request.urlopen(self.url + path, timeout=2):
                    return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"nothing answers on {self.url} after {timeout}s; see {self.log.name}")

    def __enter__(self) -> Service:
        return self


def wrk(url: str, lua: Path, env: dict[str, str], seconds: int, connections: int, threads: int = 2) -> dict[str, Any]:
    """One wrk run; the lua script prints one line "ZR_RESULT {json}" in done() (see bench/webhook.lua)."""
    assert_loopback(url)
    env = dict(os.environ, ZR_BENCH_THREADS=str(threads), **env)
    cmd = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(lua),
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + 60, check=False)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("ZR_RESULT ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    r = json.loads(line[len("ZR_RESULT ") :])
    secs = r["duration_us"] / 1e6
    ok = r["requests"] - r["errors"]["status"]
    return rnd(
        {
            "requests": r["requests"],
            "ok_requests": ok,
            "errors": r["errors"],
            "seconds": secs,
            "rps": r["requests"] / secs if secs else 0.0,
            "ok_rps": ok / secs if secs else 0.0,
            "latency_ms": {k: v / 1000.0 for k, v in r["latency_us"].items()},
            "connections": connections,
            "threads": threads,
        }
    )


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 30.0) -> tuple[int, float]:
    """One POST on a new connection: the HTTP status (0: no answer) and the seconds until the whole answer was read."""
    assert_loopback(url)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            r.read()
            status = int(r.status)
    except urllib.error.HTTPError as e:
        e.read()
        status = e.code
    except OSError:
        status = 0
    return status, time.perf_counter() - start

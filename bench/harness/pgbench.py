"""pgbench: one run of a script from bench/sql/, with throughput and per-transaction latencies from its -l log."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness.numbers import percentile, rnd
from bench.harness.paths import SQL
from bench.harness.profile import Budget


@dataclasses.dataclass
class Run:
    """One pgbench run (time-boxed in full runs, a fixed number of transactions per client in quick ones)."""

    script: str
    clients: int
    duration_s: float
    transactions: int
    failed: int
    tps: float
    latency_ms: dict[str, float | None]
    statements_ms: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return rnd(dataclasses.asdict(self))

    def statement_ms(self, starts: tuple[str, ...]) -> float | None:
        """pgbench's mean latency of the first statement whose text starts with one of `starts`."""
        for s in self.statements_ms:
            if s["command"].lower().startswith(starts):
                return float(s["ms"])
        return None


def pgbench(url: str, script: str, clients: int, budget: Budget, defines: dict[str, Any], work: Path) -> Run:
    """Run bench/sql/<script>.sql with `clients` clients (-n -M prepared) and -D `defines`."""
    log_dir = Path(tempfile.mkdtemp(prefix="pgbench-", dir=work))
    try:
        started = time.monotonic()
        out = subprocess.run(
            command(url, script, clients, budget, defines, log_dir), capture_output=True, text=True, check=False
        )
        duration = time.monotonic() - started
        text = out.stdout + out.stderr
        if out.returncode != 0 or "aborted" in text:
            raise RuntimeError(f"pgbench {script} failed (exit {out.returncode}):\n{text[-3000:]}")
        latencies, failed = read_logs(log_dir)
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
    failed_line = re.search(r"number of failed transactions: (\d+)", text)
    tps_line = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", text)
    return Run(
        script=script,
        clients=clients,
        duration_s=duration,
        transactions=len(latencies),
        failed=max(failed, int(failed_line.group(1))) if failed_line else failed,
        tps=float(tps_line.group(1)) if tps_line else 0.0,
        latency_ms=latency_summary(latencies),
        statements_ms=statement_latencies(text),
    )


def command(url: str, script: str, clients: int, budget: Budget, defines: dict[str, Any], log_dir: Path) -> list[str]:
    threads = max(1, min(clients, os.cpu_count() or 1))
    limit = ["-T", str(budget.seconds)] if budget.seconds else ["-t", str(budget.transactions)]
    cmd = ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", str(threads), *limit]
    cmd += ["-r", "-l", "--log-prefix", str(log_dir / "log"), "-f", str(SQL / f"{script}.sql")]
    for k, v in defines.items():
        cmd += ["-D", f"{k}={v}"]
    return [*cmd, url]


def read_logs(log_dir: Path) -> tuple[list[float], int]:
    """Sorted transaction latencies (ms) and the number of failed transactions, from the -l logs."""
    latencies: list[float] = []
    failed = 0
    for path in log_dir.glob("log*"):
        for line in path.read_text().splitlines():
            fields = line.split()
            if len(fields) < 3:
                continue
            if fields[2].isdigit():
                latencies.append(int(fields[2]) / 1000.0)
            else:
                failed += 1
    return sorted(latencies), failed


def latency_summary(latencies: list[float]) -> dict[str, float | None]:
    return {
        "mean": (sum(latencies) / len(latencies)) if latencies else None,
        "p50": percentile(latencies, 50),
        "p90": percentile(latencies, 90),
        "p99": percentile(latencies, 99),
        "max": latencies[-1] if latencies else None,
    }


def statement_latencies(text: str) -> list[dict[str, Any]]:
    """The per-statement means of -r ("statement latencies in milliseconds")."""
    statements = []
    in_stats = False
    for line in text.splitlines():
        if "statement latencies in milliseconds" in line:
            in_stats = True
        elif in_stats and (m := re.match(r"\s+([0-9.]+)\s+(\d+)\s+(.*)$", line)):
            statements.append({"ms": float(m.group(1)), "failures": int(m.group(2)), "command": m.group(3).strip()})
        elif line.strip():
            in_stats = False
    return statements

"""Results: one JSON file per benchmark (<out>/<name>.json) with when it ran, the load average and the machine."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench.harness.numbers import rnd

Result = dict[str, Any]

SETTINGS = [
    "shared_buffers",
    "work_mem",
    "maintenance_work_mem",
    "effective_cache_size",
    "synchronous_commit",
    "fsync",
    "wal_level",
    "max_wal_size",
    "checkpoint_timeout",
    "max_connections",
    "jit",
    "max_parallel_workers_per_gather",
    "random_page_cost",
    "effective_io_concurrency",
]
TOOLS = ["pgbench", "wrk"]
GOAL_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
}


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def goal(what: str, value: float | None, op: str, target: float, unit: str) -> Result:
    """A goal and whether `value` meets it (None when there is no value)."""
    met = None if value is None else GOAL_OPS[op](value, target)
    return rnd({"goal": what, "value": value, "target": f"{op} {target:g}{(' ' + unit) if unit else ''}", "met": met})


def machine(url: str) -> Result:
    """This machine, the PostgreSQL server at `url` and its settings that matter here, the load tools."""
    with psycopg.connect(url, autocommit=True) as conn:
        version = conn.execute("select version()").fetchone()
        settings = {s: conn.execute(sql.SQL("show {}").format(sql.Identifier(s))).fetchone() for s in SETTINGS}
    return {
        "nproc": os.cpu_count(),
        "cpu": proc_field("/proc/cpuinfo", "model name"),
        "memory_gib": round(memory_kib() / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgres": version[0] if version else None,
        "settings": {s: row[0] if row else None for s, row in settings.items()},
        "tools": {tool: tool_version(tool) for tool in TOOLS},
    }


def memory_kib() -> int:
    total = proc_field("/proc/meminfo", "MemTotal").split()  # "24641232 kB"
    return int(total[0]) if total else 0


def proc_field(path: str, name: str) -> str:
    """The value of the first "name: value" line of a /proc file ("" when there is none)."""
    try:
        with open(path) as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith(name)), "")
    except OSError:
        return ""


def tool_version(tool: str) -> str | None:
    try:
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return None
    text = out.stdout or out.stderr
    return text.splitlines()[0].strip() if text else ""


def write(path: Path, result: Result) -> None:
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")


def read(out: Path, names: Iterable[str]) -> dict[str, Result]:
    """The results in `out` for `names`, in the order they were measured."""
    found = {name: json.loads((out / f"{name}.json").read_text()) for name in names if (out / f"{name}.json").exists()}
    order = {name: i for i, name in enumerate(found)}

    def measured(name: str) -> tuple[str, int]:
        return found[name].get("started_at") or found[name].get("measured_at") or "", order[name]

    return {name: found[name] for name in sorted(found, key=measured)}


class Recorder:
    """This run's results, by benchmark: started, finished, load average at both ends, the machine."""

    def __init__(self, out: Path, mode: str, scale: float, machine_url: str):
        self.out = out
        self.mode = mode
        self.scale = scale
        self.machine_url = machine_url
        self.results: dict[str, Result] = {}
        self._machine: Result | None = None

    def begin(self, name: str) -> Result:
        return self.results.setdefault(
            name,
            {
                "benchmark": name,
                "mode": self.mode,
                "scale": self.scale,
                "started_at": now(),
                "load_average": {"start": loadavg()},
            },
        )

    def finish(self, name: str) -> None:
        """Stamp the end (again, for benchmarks measured in several steps) and save."""
        r = self.results[name]
        r["finished_at"] = now()
        r["load_average"]["end"] = loadavg()
        r.setdefault("machine", self.machine())
        self.save(name)

    def machine(self) -> Result:
        if self._machine is None:
            self._machine = machine(self.machine_url)
        return self._machine

    def save(self, name: str) -> None:
        write(self.out / f"{name}.json", self.results[name])

"""Processes on this machine, read from /proc (Linux): memory and children, for benchmarks that
watch a system over time."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass(frozen=True)
class Memory:
    """A process's memory in MiB: resident (VmRSS) and the private, anonymous part of it (RssAnon:
    the heap and stacks, without the shared libraries and shared memory it has touched)."""

    rss_mb: float
    anon_mb: float

    def __add__(self, other: Memory) -> Memory:
        return Memory(self.rss_mb + other.rss_mb, self.anon_mb + other.anon_mb)


NONE = Memory(0.0, 0.0)


def memory(pid: int) -> Memory | None:
    """The memory of `pid`, or None when it is gone."""
    fields: dict[str, float] = {}
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon"):
                fields[name] = int(value.split()[0]) / 1024  # "12345 kB"
    except (OSError, ValueError):
        return None
    if "VmRSS" not in fields:
        return None  # a zombie
    return Memory(round(fields["VmRSS"], 1), round(fields.get("RssAnon", 0.0), 1))


def total(pids: list[int]) -> Memory:
    """The memory of `pids` summed (those gone count nothing)."""
    out = NONE
    for pid in pids:
        out = out + (memory(pid) or NONE)
    return Memory(round(out.rss_mb, 1), round(out.anon_mb, 1))


def children(pid: int) -> list[int]:
    """The direct children of `pid`, in pid order."""
    found: set[int] = set()
    try:
        for task in (PROC / str(pid) / "task").iterdir():
            found.update(int(c) for c in (task / "children").read_text().split())
    except OSError:
        pass
    return sorted(found)


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command (state, ppid, ...), or None when it is gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ")".
    return stat.rsplit(")", 1)[1].split()


def parent(pid: int) -> int | None:
    """The parent of `pid` (None when it is gone)."""
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) `pids` have used so far, summed (those gone count nothing)."""
    seconds = 0.0
    for pid in pids:
        fields = _stat(pid)
        if fields:
            seconds += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime: fields 14 and 15
    return seconds


def machine_cpu_seconds() -> tuple[float, float]:
    """CPU seconds this machine has spent so far, all cores summed: (in total, idle or waiting for I/O)."""
    # cpu  user nice system idle iowait irq softirq steal (guest time is counted in user already)
    fields = [int(x) for x in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(fields) / CLOCK_TICKS, (fields[3] + fields[4]) / CLOCK_TICKS

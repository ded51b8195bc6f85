"""The interface of a benchmark (one module in bench/benchmarks/) and the context it runs in."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.harness.profile import Profile, World
from bench.harness.results import Result
from bench.harness.scratch import Scratch

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclasses.dataclass
class Context:
    """What a benchmark measures with. The runner sets `current_world` while a world is loaded."""

    profile: Profile
    scratch: Scratch  # holds the current world
    work: Path  # a temporary directory, removed at the end of the run
    results: dict[str, Result]  # this run's results so far, by benchmark
    worlds: dict[str, Result]  # the worlds generated so far, by name
    current_world: World | None = None

    @property
    def world(self) -> World:
        if self.current_world is None:
            raise RuntimeError("this benchmark needs a world: list it in its Benchmark(worlds=...)")
        return self.current_world


def no_goals(result: Result) -> list[Result] | None:
    return None


def no_helpers(result: Result) -> dict[str, Any]:
    return {}


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """One benchmark. Only `name` and `measure` are required; the rest say what else it takes part in.

    measure(ctx) returns what to merge into the benchmark's result (<name>.json): its keys replace
    the result's, except "worlds", whose entries accumulate (one per world measured).
    """

    name: str
    measure: Callable[[Context], Result]
    # Measured once in each of these worlds ("small", "large"), in the order the worlds are built;
    # a benchmark with no world is measured once after them.
    worlds: tuple[str, ...] = ()
    # Benchmarks whose results (ctx.results) this one reads: selecting it selects them.
    requires: tuple[str, ...] = ()
    # bench/sql/proposals/<proposals>_*.sql: applied cumulatively at the end of the large world, each step measured
    # by measure_proposal(ctx, step) (step "before" first), listed under the result's "proposals".
    proposals: str = ""
    measure_proposal: Callable[[Context, str], Result] | None = None
    # Measured again after another benchmark's proposals (its `proposals` prefix) have been applied;
    # remeasure(ctx) returns what to merge into the result, or None to leave it.
    remeasure_after: str = ""
    remeasure: Callable[[Context], Result | None] | None = None
    # The goals, computed when everything is measured (None: the result gets no "goals").
    goals: Callable[[Result], list[Result] | None] = no_goals
    # <name>.png, from the result.
    plot: Callable[[Result], Figure | None] | None = None
    # What bench/benchmarks/<name>.md.tmpl uses besides the result `r` (table builders, derived numbers).
    report: Callable[[Result], dict[str, Any]] = no_helpers
    # False: the default full run (no --only) shows the <name>.json already there instead of measuring.
    in_full_run: bool = True
    # True: measured only when named (--only NAME), by full and quick runs alike; every other run,
    # the smoke test of scripts/test (--quick) included, leaves it out and the report shows the
    # <name>.json already there. For benchmarks whose point is their length (the soak).
    only_when_named: bool = False

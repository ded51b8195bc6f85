"""The order things run in: each world once with the benchmarks measured in it, the proposals at the
end of the large world, then the benchmarks without a world; goals last."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from bench.harness.benchmark import Benchmark, Context
from bench.harness.profile import World
from bench.harness.results import Recorder, Result
from bench.harness.scratch import psql_file
from bench.harness.worlds import build_world

log = logging.getLogger(__name__)


def select(registry: list[Benchmark], names: list[str], full: bool) -> list[Benchmark]:
    """The named benchmarks (all when none is named) and those they require, in registry order.
    A run that names none leaves out the benchmarks measured only when named (only_when_named),
    quick or full; the default full run also leaves out those that are their own job (in_full_run=False)."""
    by_name = {bm.name: bm for bm in registry}
    wanted = set(names) if names else {bm.name for bm in registry if not bm.only_when_named}
    for name in list(wanted):
        wanted |= set(by_name[name].requires)
    chosen = [bm for bm in registry if bm.name in wanted]
    if not names:
        for bm in registry:
            if bm.only_when_named:
                log.info(
                    "%s: measured only when named (scripts/bench --only %s); the report shows its JSON if there is one",
                    bm.name,
                    bm.name,
                )
    if full and not names:
        for bm in chosen:
            if not bm.in_full_run:
                log.info(
                    "%s: not measured by the default full run (scripts/bench --only %s measures it); "
                    "the report shows its JSON if there is one",
                    bm.name,
                    bm.name,
                )
        chosen = [bm for bm in chosen if bm.in_full_run]
    return chosen


def merge(result: Result, measured: Result) -> None:
    """measured's keys replace result's, except "worlds", whose entries accumulate."""
    for key, value in measured.items():
        if key == "worlds" and isinstance(value, dict):
            result.setdefault("worlds", {}).update(value)
        else:
            result[key] = value


class Runner:
    def __init__(self, ctx: Context, recorder: Recorder, benchmarks: list[Benchmark], proposals: list[Path]):
        self.ctx = ctx
        self.recorder = recorder
        self.benchmarks = benchmarks
        self.proposals = proposals

    def run(self) -> None:
        profile = self.ctx.profile
        for world in (profile.small, profile.large):
            if any(world.name in bm.worlds for bm in self.benchmarks):
                self.run_world(world)
        self.ctx.current_world = None
        for bm in self.benchmarks:
            if not bm.worlds:
                self.step(bm, bm.name, bm.measure)
        for bm in self.benchmarks:
            if bm.name in self.ctx.results and (goals := bm.goals(self.ctx.results[bm.name])) is not None:
                self.ctx.results[bm.name]["goals"] = goals
        for name, result in self.ctx.results.items():
            result["worlds_generated"] = self.ctx.worlds
            self.recorder.save(name)

    def run_world(self, world: World) -> None:
        self.ctx.worlds[world.name] = build_world(self.ctx.scratch, world)
        self.ctx.current_world = world
        for bm in self.benchmarks:
            if world.name in bm.worlds:
                self.step(bm, f"{bm.name} on {world.label()}", bm.measure)
        if world is self.ctx.profile.large:
            for bm in self.benchmarks:
                if bm.proposals and bm.name in self.ctx.results:
                    self.run_proposals(bm, world)

    def step(self, bm: Benchmark, what: str, measure: Callable[[Context], Result | None]) -> None:
        """Measure and merge into bm's result (nothing when measure returns None), then save it."""
        log.info("  %s", what)
        result = self.recorder.begin(bm.name)  # stamps the start (the first time)
        measured = measure(self.ctx)
        if measured is not None:
            merge(result, measured)
            self.recorder.finish(bm.name)

    def run_proposals(self, bm: Benchmark, world: World) -> None:
        """bench/sql/proposals/<prefix>_*.sql, applied cumulatively, each step measured ("before" first)."""
        files = [p for p in self.proposals if p.name.startswith(bm.proposals + "_")]
        if not files or bm.measure_proposal is None:
            return
        steps: list[Result] = []
        for step in [None, *files]:
            entry: Result = {
                "name": "before" if step is None else step.stem,
                "file": None if step is None else f"bench/sql/proposals/{step.name}",
                "world_label": world.label(),
            }
            if step is not None and (error := self.apply_proposal(step)) is not None:
                steps.append(entry | {"status": "does not apply", "error": error})
                break  # later steps build on this one
            log.info("  %s with proposals: %s", bm.name, entry["name"])
            steps.append(entry | {"result": bm.measure_proposal(self.ctx, entry["name"])})
        self.step(bm, f"{bm.name}: {len(steps)} proposal step(s) measured", lambda ctx: {"proposals": steps})
        for other in self.benchmarks:
            if other.remeasure_after == bm.proposals and other.remeasure and other.name in self.ctx.results:
                self.step(other, f"{other.name} again, with the {bm.proposals} proposals applied", other.remeasure)

    def apply_proposal(self, path: Path) -> str | None:
        """Apply one proposal in the scratch database; the error when it does not apply (any more)."""
        log.info("  proposal %s: applying in the scratch database", path.name)
        try:
            psql_file(self.ctx.scratch.url, path, quiet=True)
        except RuntimeError as exc:
            # Written against an older schema, or landed as a migration since: report it, do not fail the run.
            log.info("    does not apply any more, skipping the rest: %s", exc)
            return str(exc)
        return None

"""scripts/bench [--quick] [--scale N] [--only NAME[,NAME]] [--out DIR] [--database NAME] ...

Everything runs in a scratch database (default zr_bench) on the server of DATABASE_URL, created
fresh for each data set ("world") from supabase/local/platform.sql and every migration, and
dropped at the end; the project database is never touched. Each benchmark (bench/benchmarks/)
writes <out>/<name>.json and <out>/<name>.png; the report (docs/benchmarks.md, or <out>/benchmarks.md
for another --out) is rendered from bench/report.md.tmpl and every <out>/*.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.benchmarks import REGISTRY
from bench.harness.benchmark import Context
from bench.harness.paths import DOCS, PROPOSALS, RESULTS
from bench.harness.plots import plot_all
from bench.harness.profile import make_profile
from bench.harness.report import write_report
from bench.harness.results import Recorder, loadavg
from bench.harness.runner import Runner, select
from bench.harness.scratch import Scratch, server_url

log = logging.getLogger("bench")
NAMES = [bm.name for bm in REGISTRY]


class Elapsed(logging.Formatter):
    """[  12.3s] message: seconds since the run started."""

    def format(self, record: logging.LogRecord) -> str:
        return f"[{record.relativeCreated / 1000:7.1f}s] {record.getMessage()}"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench", description="ZenRent benchmarks (see docs/benchmarks.md).")
    parser.add_argument("--quick", action="store_true", help="small data, short runs: a smoke test (< 2 minutes)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every data size by N (default 1)")
    parser.add_argument("--only", default="", help="comma-separated benchmarks: " + ", ".join(NAMES))
    parser.add_argument("--out", default=str(RESULTS), help="directory for <name>.json and <name>.png")
    parser.add_argument("--database", default="zr_bench", help="scratch database name (dropped and recreated)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database at the end")
    parser.add_argument(
        "--soak-minutes",
        type=float,
        default=None,
        help="length of the soak's load phase (default: 30 minutes, 1 with --quick)",
    )
    parser.add_argument("--no-proposals", action="store_true", help="skip bench/sql/proposals/*.sql")
    parser.add_argument(
        "--docs",
        default=None,
        help="markdown file to render (default: docs/benchmarks.md when "
        "--out is bench/results, else <out>/benchmarks.md)",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="measure nothing: render the report from <out>/*.json (after editing bench/*.md.tmpl)",
    )
    args = parser.parse_args(argv)
    args.names = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = set(args.names) - set(NAMES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}; choose from {', '.join(NAMES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(Elapsed())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    docs = Path(args.docs) if args.docs else (DOCS if out == RESULTS.resolve() else out / "benchmarks.md")
    if not args.report_only:
        measure(args, out)
    write_report(REGISTRY, out, docs)
    log.info("done: %s", docs)
    return 0


def measure(args: argparse.Namespace, out: Path) -> None:
    profile = make_profile(args.quick, args.scale)
    if args.soak_minutes is not None:
        profile = dataclasses.replace(profile, soak_s=max(10, round(args.soak_minutes * 60)))
    benchmarks = select(REGISTRY, args.names, full=profile.mode == "full")
    scratch = Scratch(server_url(), args.database)
    recorder = Recorder(out, profile.mode, args.scale, scratch.admin_url)
    proposals = [] if args.no_proposals else sorted(PROPOSALS.glob("*.sql"))
    work = Path(tempfile.mkdtemp(prefix="zr-bench-"))
    ctx = Context(profile, scratch, work, results=recorder.results, worlds={})
    log.info(
        "benchmarks %s (%s, scale %s) -> %s; scratch database %s; load average %s",
        ", ".join(bm.name for bm in benchmarks),
        profile.mode,
        args.scale,
        out,
        scratch.name,
        loadavg(),
    )
    started = time.monotonic()
    try:
        Runner(ctx, recorder, benchmarks, proposals).run()
    finally:
        if not args.keep:
            drop_quietly(scratch)
        shutil.rmtree(work, ignore_errors=True)
    plot_all(benchmarks, recorder.results, out)
    log.info("measured %s in %.0fs: %s", ", ".join(recorder.results), time.monotonic() - started, out)


def drop_quietly(scratch: Scratch) -> None:
    try:
        scratch.drop()
    except Exception as exc:  # noqa: BLE001 - report, do not mask the real error
        log.warning("could not drop scratch database %s: %s", scratch.name, exc)


if __name__ == "__main__":
    sys.exit(main())

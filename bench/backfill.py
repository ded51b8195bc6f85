"""The backfill benchmark alone, at any size (bench/benchmarks/backfill.py says what it measures).

    .venv/bin/python bench/backfill.py [--rows N] [--out bench/results/backfill.json]

It runs in scratch databases on the server of DATABASE_URL and writes the JSON to --out (default
bench/results/backfill.json for >= 1M rows, else stdout only); exits 1 unless the backfill
reconciled, left nothing pending and gave the same state with every batch size.
scripts/bench --only backfill does the same at the profile's size and refreshes the report.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import uuid
from pathlib import Path

# Run as a file (.venv/bin/python bench/backfill.py, as the runbook does): make the checkout importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.benchmarks.backfill import measure_history, verdict
from bench.harness import results
from bench.harness.paths import RESULTS, ROOT
from bench.harness.scratch import server_url, with_database

log = logging.getLogger("bench.backfill")
DEFAULT_OUT = RESULTS / "backfill.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="messages to generate (default 1,000,000)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"where to write the JSON (default {DEFAULT_OUT.relative_to(ROOT)} for >= 1M rows, else stdout only)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    result = measure_history(
        with_database(server_url(), "postgres"), args.rows, prefix=f"zr_bench_{uuid.uuid4().hex[:10]}"
    )
    out = args.out or (DEFAULT_OUT if args.rows >= 1_000_000 else None)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        results.write(out, result)
        log.info("wrote %s", out)
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0 if verdict(result) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Drive the multi-WABA history backfill: call public.backfill_multi_waba_history() in batches
(one transaction each, as service_role) until nothing is pending, show progress, print a report.

Safe to interrupt and re-run at any time: a row is pending until its batch commits.
Run it as scripts/migrate-history (which puts the checkout on PYTHONPATH for `app`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, LiteralString, TextIO

import psycopg

from app.config import default_database_url


def call(conn: psycopg.Connection, sql: LiteralString, *params: object) -> Any:
    """The one value of a one-row query, in its own transaction as service_role."""
    with conn.transaction():
        conn.execute("set local role service_role")
        row = conn.execute(sql, params).fetchone()
    if row is None:
        raise RuntimeError(f"no row from: {sql}")
    return row[0]


def progress(done: int, total: int, started: float, stream: TextIO) -> None:
    width = 40
    frac = 1.0 if total == 0 else min(done / total, 1.0)
    rate = done / max(time.monotonic() - started, 1e-9)
    bar = "#" * int(width * frac) + "-" * (width - int(width * frac))
    stream.write(f"\r[{bar}] {done}/{total} messages ({rate:,.0f}/s)")
    stream.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--max-batches", type=int, default=None, help="stop after N batches (to pause a long run)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar; one summary line")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)

    url = default_database_url()
    totals = {"seen": 0, "matched": 0, "unmatched": 0, "ambiguous": 0, "conversations_created": 0, "archived": 0}
    started = time.monotonic()
    with psycopg.connect(url, autocommit=False) as conn:
        pending = call(conn, "select public.multi_waba_migration_report()")["pending"]
        batches = 0
        while True:
            if args.max_batches is not None and batches >= args.max_batches:
                break
            result = call(conn, "select public.backfill_multi_waba_history(%s)", args.batch_size)
            batches += 1
            for key in totals:
                totals[key] += result[key]
            if not args.quiet and sys.stderr.isatty():
                progress(totals["seen"], pending, started, sys.stderr)
            if result["seen"] == 0 or result["remaining"] == 0:
                break
        elapsed = time.monotonic() - started
        if not args.quiet and sys.stderr.isatty():
            sys.stderr.write("\n")
        report = call(conn, "select public.multi_waba_migration_report()")
        mismatched = call(conn, "select count(*) from public.reconcile_multi_waba_archive() where not matches")

    summary = {
        "this_run": totals,
        "batches": batches,
        "seconds": round(elapsed, 3),
        "totals": report,
        "landlords_not_reconciled": mismatched,
    }
    if args.json:
        print(json.dumps(summary))
    elif args.quiet:
        print(
            f"migrate-history: {totals['seen']} messages filed ({totals['matched']} matched, "
            f"{totals['unmatched']} unmatched, {totals['ambiguous']} ambiguous, "
            f"{totals['conversations_created']} conversations created); pending {report['pending']}; "
            f"archive reconciled: {'yes' if mismatched == 0 else f'NO ({mismatched} landlords differ)'}",
            file=sys.stderr,
        )
    else:
        print(f"messages seen          {totals['seen']}")
        print(f"  matched              {totals['matched']}")
        print(f"  unmatched            {totals['unmatched']}  (kept, visible to their landlord as unknown_sender)")
        print(f"  ambiguous tenant     {totals['ambiguous']}  (filed in the conversation, tenant left open)")
        print(f"conversations created  {totals['conversations_created']}")
        print(f"batches                {batches} in {elapsed:.1f}s")
        print(f"still pending          {report['pending']}")
        print(
            f"archive reconciliation {'all landlords match' if mismatched == 0 else f'{mismatched} landlords DIFFER'}"
        )
    return 0 if mismatched == 0 or report["pending"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Where things are."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
SQL = BENCH / "sql"
PROPOSALS = SQL / "proposals"
RESULTS = BENCH / "results"
BENCHMARKS = BENCH / "benchmarks"
TEMPLATES = BENCH / "harness" / "templates"
REPORT_TEMPLATE = BENCH / "report.md.tmpl"
SCALING_TEMPLATE = BENCH / "scaling.md.tmpl"  # docs/scaling.md, beside the report
DOCS = ROOT / "docs" / "benchmarks.md"
MIGRATIONS = ROOT / "supabase" / "migrations"
PLATFORM = ROOT / "supabase" / "local" / "platform.sql"
REALTIME = ROOT / "supabase" / "local" / "realtime.sql"
STORAGE = ROOT / "supabase" / "local" / "storage.sql"

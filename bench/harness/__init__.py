"""The benchmark harness: what every benchmark in bench/benchmarks/ shares.

- paths      where the checkout, the SQL, the results and the report are
- numbers    percentiles, ratios, rounding, "1.5M"
- profile    how much data and how long each measurement runs (--quick, --scale)
- scratch    the scratch database: created from platform.sql and the migrations, dropped after
- worlds     generated data sets (bench/sql/world_*.sql) and the phones pgbench scripts draw
- pgbench    one pgbench run, with latencies from its -l log
- http       gunicorn and wrk on loopback
- results    the JSON files, the machine, goals
- benchmark  the interface a benchmark module fills in, and the context it runs in
- runner     the order things run in (worlds, proposals, derived benchmarks)
- plots      matplotlib, one PNG per benchmark
- report     docs/benchmarks.md from bench/report.md.tmpl and each benchmark's template
- cli        scripts/bench's arguments and logging
"""

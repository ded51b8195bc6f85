"""ZenRent benchmarks: a small harness (bench/harness/) and one module per benchmark (bench/benchmarks/).

Run them with scripts/bench (python -m bench); see docs/benchmarks.md.
"""

"""The benchmarks, one module each, registered in REGISTRY in the order they run in a world
(each changes the scratch database the next one measures) and appear in the report.

A module defines BENCHMARK = Benchmark(name, measure, ...) (bench/harness/benchmark.py) and its
section of the report in <name>.md.tmpl next to it.
"""

from bench.benchmarks import (
    backfill,
    cache_question,
    flood,
    inbound_routing,
    inbox_rls,
    media_worker,
    partitioning,
    routing_upkeep,
    scale,
    soak,
    webhook_http,
)
from bench.harness.benchmark import Benchmark

REGISTRY: list[Benchmark] = [
    inbox_rls.BENCHMARK,
    cache_question.BENCHMARK,
    inbound_routing.BENCHMARK,
    webhook_http.BENCHMARK,
    routing_upkeep.BENCHMARK,
    scale.BENCHMARK,
    backfill.BENCHMARK,
    flood.BENCHMARK,
    media_worker.BENCHMARK,
    partitioning.BENCHMARK,
    soak.BENCHMARK,  # measured only when named (scripts/bench --only soak)
]

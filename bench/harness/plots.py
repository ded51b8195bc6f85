"""Plots: one PNG per benchmark (matplotlib, no display). Benchmarks take `plt` from here."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import matplotlib.pyplot as plt

from bench.harness.results import Result

if TYPE_CHECKING:
    from bench.harness.benchmark import Benchmark

__all__ = ["plot_all", "plt"]

matplotlib.use("Agg")  # files only, no display (pyplot picks its backend at the first figure)


def plot_all(benchmarks: list[Benchmark], results: dict[str, Result], out: Path) -> None:
    """<out>/<name>.png for every benchmark of this run that draws one."""
    for bm in benchmarks:
        if bm.plot is None or bm.name not in results:
            continue
        fig = bm.plot(results[bm.name])
        if fig is None:
            continue
        fig.tight_layout()
        fig.savefig(out / f"{bm.name}.png", dpi=110)
        plt.close(fig)

"""Small number helpers shared by measurements, plots and the report."""

from __future__ import annotations

import math
from typing import Any, TypeVar, cast

T = TypeVar("T")


def human(n: float) -> str:
    """1000 -> '1k', 1500000 -> '1.5M'."""
    for div, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= div:
            v = n / div
            return f"{v:.0f}{suffix}" if v == int(v) else f"{v:.1f}{suffix}"
    return f"{n:.0f}"


def percentile(sorted_values: list[float], p: float) -> float | None:
    """The p-th percentile of already sorted values, interpolated between neighbours."""
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    if lo == hi:
        return sorted_values[lo]
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def rnd(x: T, digits: int = 3) -> T:
    """Round every float in a (nested) result to `digits` places."""
    return cast(T, _rounded(x, digits))  # the same shape, rounded


def _rounded(x: Any, digits: int) -> Any:
    if isinstance(x, float):
        return round(x, digits)
    if isinstance(x, dict):
        return {k: _rounded(v, digits) for k, v in x.items()}
    if isinstance(x, list):
        return [_rounded(v, digits) for v in x]
    return x

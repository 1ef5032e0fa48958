"""Latency summaries of the load harness: nearest-rank percentiles, in milliseconds.

Nearest rank (the smallest value with at least p % of the values at or below it) is an observed latency, never an
interpolation between two, and keeps p50 <= p95 <= p99 <= max for any sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

PERCENTILES = (50, 95, 99)


def percentile(ordered: Sequence[float], pct: float) -> float:
    """The nearest-rank `pct` percentile of `ordered` (sorted ascending, not empty)."""
    assert ordered, "a percentile of no values"
    assert 0 < pct <= 100
    rank = math.ceil(pct / 100 * len(ordered))
    return ordered[rank - 1]


def summary_ms(latencies_ms: Sequence[float]) -> dict[str, float | int]:
    """count, p50/p95/p99/max and mean of latencies in ms; only `count` (0) when there are none."""
    if not latencies_ms:
        return {"count": 0}
    ordered = sorted(latencies_ms)
    result: dict[str, float | int] = {"count": len(ordered)}
    for pct in PERCENTILES:
        result[f"p{pct}_ms"] = round(percentile(ordered, pct), 2)
    result["max_ms"] = round(ordered[-1], 2)
    result["mean_ms"] = round(sum(ordered) / len(ordered), 2)
    assert result["p50_ms"] <= result["p95_ms"] <= result["p99_ms"] <= result["max_ms"]
    return result

"""Latency percentiles of a deployment per day, estimated from the latency histograms the serving
processes' meters count (`modelworks.platform.inference_usage.LATENCY_BUCKETS_S`): within the
bucket that holds the percentile, linear interpolation between its bounds (as Prometheus'
``histogram_quantile`` does). A percentile that falls in the last, open bucket is shown as that
bucket's lower bound (the slowest bound), so it reads as "at least"."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import zip_longest
from typing import Any

from modelworks.platform.inference_usage import LATENCY_BUCKETS_S

QUANTILES = {"p50": 0.5, "p99": 0.99}


def quantile(counts: Sequence[int], q: float, bounds: Sequence[float] = LATENCY_BUCKETS_S) -> float | None:
    """The ``q`` quantile (seconds) of a histogram: ``counts[i]`` requests took at most
    ``bounds[i]`` (and more than ``bounds[i-1]``); ``counts[len(bounds)]`` more than the last. None when empty."""
    total = sum(counts)
    if total <= 0:
        return None
    rank, seen = q * total, 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            if i >= len(bounds):
                return bounds[-1]
            lower = bounds[i - 1] if i else 0.0
            return lower + (bounds[i] - lower) * (rank - seen) / n
        seen += n
    return bounds[-1]


def per_day(usage: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``[{"day", "requests", "mean_latency_ms", "p50_ms", "p99_ms"}]`` oldest first, from usage
    rows (`inference_usage.usage_rows`) of one deployment; a percentile is None without a histogram."""
    days: dict[str, dict[str, Any]] = {}
    for u in usage:
        day = days.setdefault(u["day"], {"requests": 0, "latency_total_ms": 0.0, "buckets": []})
        day["requests"] += u["requests"]
        day["latency_total_ms"] += u["mean_latency_ms"] * u["requests"]
        day["buckets"] = [a + b for a, b in zip_longest(day["buckets"], u.get("latency_buckets") or [], fillvalue=0)]
    out = []
    for d, v in sorted(days.items()):
        row = {"day": d, "requests": v["requests"], "mean_latency_ms": v["latency_total_ms"] / max(v["requests"], 1)}
        for name, q in QUANTILES.items():
            seconds = quantile(v["buckets"], q)
            row[f"{name}_ms"] = None if seconds is None else round(1000 * seconds, 3)
        out.append(row)
    return out

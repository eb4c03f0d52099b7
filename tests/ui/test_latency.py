"""The deployment page's latency percentiles: estimated per day from the meters' histograms
(counts per bucket of `LATENCY_BUCKETS_S`), interpolated within the bucket that holds them.
No browser; the chart itself is drawn in tests/ui/test_deployments.py."""

from __future__ import annotations

import pytest

from modelworks.platform.inference_usage import LATENCY_BUCKETS_S
from modelworks.ui.latency import per_day, quantile

EMPTY = [0] * (len(LATENCY_BUCKETS_S) + 1)


def counts(**at: int) -> list[int]:
    """A histogram with ``b<i>=n``: n requests in bucket i."""
    out = list(EMPTY)
    for name, n in at.items():
        out[int(name[1:])] = n
    return out


def test_a_percentile_is_interpolated_within_its_bucket():
    ten = counts(b1=10)  # ten requests between 5 and 10 ms
    assert quantile(ten, 0.5) == pytest.approx(0.0075)
    assert quantile(ten, 0.99) == pytest.approx(0.00995)
    mixed = counts(b0=90, b4=10)  # 90 under 5 ms, 10 between 50 and 100 ms
    assert quantile(mixed, 0.5) == pytest.approx(0.005 * 50 / 90)
    assert quantile(mixed, 0.99) == pytest.approx(0.05 + 0.05 * 9 / 10)
    assert quantile(EMPTY, 0.5) is None


def test_the_open_last_bucket_reads_as_its_lower_bound():
    slow = counts(b0=98, **{f"b{len(LATENCY_BUCKETS_S)}": 2})
    assert quantile(slow, 0.99) == LATENCY_BUCKETS_S[-1]


def test_per_day_sums_callers_histograms_before_the_percentiles():
    usage = [
        {"day": "2026-12-02", "requests": 10, "mean_latency_ms": 7.0, "latency_buckets": counts(b1=10)},
        {"day": "2026-12-01", "requests": 90, "mean_latency_ms": 2.0, "latency_buckets": counts(b0=90)},
        {"day": "2026-12-02", "requests": 90, "mean_latency_ms": 2.0, "latency_buckets": counts(b0=90)},
    ]
    days = per_day(usage)
    assert [d["day"] for d in days] == ["2026-12-01", "2026-12-02"]
    assert days[1]["requests"] == 100 and days[1]["mean_latency_ms"] == pytest.approx(2.5)
    assert days[1]["p50_ms"] == pytest.approx(1000 * 0.005 * 50 / 90, abs=1e-3)
    assert days[1]["p99_ms"] == pytest.approx(1000 * (0.005 + 0.005 * 9 / 10), abs=1e-3)
    assert per_day([{"day": "d", "requests": 0, "mean_latency_ms": 0.0, "latency_buckets": []}])[0]["p99_ms"] is None

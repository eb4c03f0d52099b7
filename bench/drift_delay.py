"""The drift detector's delay on an error stream with a known change point.

Each stream is 2,000 rows at one error rate, then 2,000 at a higher one (a Bernoulli error per
row, as a classifier's 0/1 errors are). For each detector of `modelworks.evaluate.drift` (river's
ADWIN and DDM, as a continual policy runs them), over 20 seeded streams: how many rows after the
change it first flags drift, how many streams it misses, and on how many it raises a false alarm
before the change. Prints a Markdown table and writes JSON to bench/results/drift_delay.json.

    python bench/drift_delay.py [--before 0.1 --after 0.3 --streams 20]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from modelworks.evaluate.drift import drift_rows
from modelworks.store.atomic import atomic_write_text

ROWS = 2000


def measure(kind: str, before: float, after: float, streams: int) -> dict:
    delays, missed, false_alarms = [], 0, 0
    started = time.perf_counter()
    for seed in range(streams):
        rng = np.random.default_rng(seed)
        stream = np.concatenate([rng.random(ROWS) < before, rng.random(ROWS) < after]).astype(float)
        flagged = drift_rows([], stream, kind)
        false_alarms += any(i < ROWS for i in flagged)
        later = [i - ROWS for i in flagged if i >= ROWS]
        if later:
            delays.append(later[0])
        else:
            missed += 1
    seconds = time.perf_counter() - started
    return {
        "detector": kind, "before": before, "after": after, "streams": streams, "rows_per_stream": 2 * ROWS,
        "median_delay": float(np.median(delays)) if delays else None, "min_delay": min(delays, default=None),
        "max_delay": max(delays, default=None), "missed": missed, "false_alarms": false_alarms,
        "us_per_row": seconds / (streams * 2 * ROWS) * 1e6,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=float, default=0.1)
    parser.add_argument("--after", type=float, default=0.3)
    parser.add_argument("--streams", type=int, default=20)
    args = parser.parse_args()
    results = [measure(kind, args.before, args.after, args.streams) for kind in ("adwin", "ddm")]
    print("| detector | median delay (rows) | min / max | missed | streams with a false alarm | µs per row |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['detector']} | {r['median_delay']} | {r['min_delay']} / {r['max_delay']} | {r['missed']} "
              f"| {r['false_alarms']} of {r['streams']} | {r['us_per_row']:.0f} |")  # fmt: skip
    out = Path(__file__).parent / "results" / "drift_delay.json"
    atomic_write_text(out, json.dumps(results, indent=2, allow_nan=False) + "\n")


if __name__ == "__main__":
    main()

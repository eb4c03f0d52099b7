"""Watching the live error stream: prequential (test-then-train) figures and a drift detector.

A continual policy's current version predicts each new window before it trains on it; each row
gives an error (0/1 for a classifier, the absolute error for a regression). `prequential` turns a
window's errors into its metric, and the metric over the latest ``SLIDING_ROWS`` rows of the
stream. `drift_rows` runs a drift detector from `river` (ADWIN on any error; DDM on 0/1 errors)
over the stream kept so far and then the new window, and returns the rows of the new window where
it flagged a change: the stream is replayed rather than the detector stored, so no detector state
is ever unpickled. River is imported only here, when a window is tested.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Detector = Literal["adwin", "ddm"]
SLIDING_ROWS = 1000  # the sliding window of the stream, in rows
KEPT_ROWS = 5000  # the stream a policy keeps for its detector to replay


def make_detector(kind: Detector):
    """A fresh river detector: ADWIN (adaptive windowing, any bounded error) or DDM (0/1 errors)."""
    from river import drift  # river: imported when a window is tested

    if kind == "ddm":
        return drift.binary.DDM()
    return drift.ADWIN()


def drift_rows(history: Sequence[float], window: Sequence[float], kind: Detector = "adwin") -> list[int]:
    """The positions in ``window`` (0-based) where the detector, having read ``history`` first, flags drift."""
    detector = make_detector(kind)
    for value in history:
        detector.update(_value(value, kind))
    flagged = []
    for i, value in enumerate(window):
        detector.update(_value(value, kind))
        if detector.drift_detected:
            flagged.append(i)
    return flagged


def _value(value: float, kind: Detector) -> float | bool:
    return bool(value) if kind == "ddm" else float(value)


def prequential(
    errors: Sequence[float], history: Sequence[float], classification: bool
) -> tuple[float | None, float | None]:
    """(the window's metric, the metric over the latest `SLIDING_ROWS` rows of history + window):
    accuracy (1 - mean 0/1 error) for a classifier, the mean absolute error for a regression."""
    window = np.asarray(errors, dtype=float)
    recent = np.concatenate([np.asarray(history, dtype=float), window])[-SLIDING_ROWS:]

    def metric(e: np.ndarray) -> float | None:
        if not len(e):
            return None
        return float(1.0 - e.mean()) if classification else float(e.mean())

    return metric(window), metric(recent)


def kept(history: Sequence[float], window: Sequence[float]) -> list[float]:
    """The stream to keep for the next window: the latest `KEPT_ROWS` errors, rounded for JSON."""
    return [round(float(v), 6) for v in [*history, *window][-KEPT_ROWS:]]

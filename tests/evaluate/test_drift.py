"""The drift detector on a live error stream with a known change point, and prequential figures."""

from __future__ import annotations

import numpy as np
import pytest

from modelworks.evaluate.drift import drift_rows, kept, prequential


@pytest.mark.parametrize("kind", ["adwin", "ddm"])
def test_detector_flags_a_known_change_point_and_not_a_steady_stream(kind: str) -> None:
    rng = np.random.default_rng(0)
    steady = (rng.random(2000) < 0.1).astype(float)  # 10 % errors throughout
    changed = np.concatenate([(rng.random(1000) < 0.1), (rng.random(1000) < 0.6)]).astype(float)  # 60 % from 1000
    assert drift_rows([], steady, kind) == []
    flagged = drift_rows([], changed, kind)
    assert flagged and 1000 <= flagged[0] < 1300, flagged  # after the change, within 300 rows
    # The same stream split into history and a new window: only the window's rows are reported.
    in_window = drift_rows(changed[:900], changed[900:], kind)
    assert in_window and in_window[0] == flagged[0] - 900


def test_prequential_window_and_sliding_figures() -> None:
    history = [0.0] * 1500
    window = [1.0] * 100 + [0.0] * 300
    now, sliding = prequential(window, history, classification=True)
    assert now == pytest.approx(0.75)
    assert sliding == pytest.approx(1 - 100 / 1000)  # the latest 1000 rows
    assert prequential([], [], classification=True) == (None, None)
    assert prequential([0.5, 1.5], [], classification=False)[0] == pytest.approx(1.0)  # mean absolute error
    assert len(kept([0.0] * 6000, [1.0])) == 5000

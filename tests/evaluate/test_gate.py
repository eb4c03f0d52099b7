"""The promotion gate: forgetting rejects, a real improvement promotes, noise does not."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelworks.errors import UserError
from modelworks.evaluate.gate import GateConfig, Holdout, decide, load_gate_config, naive_baselines


def _flip(y: np.ndarray, rows: np.ndarray) -> np.ndarray:
    out = y.copy()
    out[rows] = 1 - out[rows]
    return out


def _world(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2, 400), rng.integers(0, 2, 400)  # new window's and old holdout's labels


def test_forgetting_beyond_epsilon_rejects_and_within_promotes() -> None:
    y_new, y_old = _world()
    current_new = _flip(y_new, np.arange(0, 160))  # the current version: 60 % on the new window
    candidate_new = _flip(y_new, np.arange(0, 20))  # the candidate: 95 %
    current_old = _flip(y_old, np.arange(0, 8))  # 98 % on the old holdout
    forgets = _flip(y_old, np.arange(0, 60))  # 85 %: a 13-point drop
    keeps = _flip(y_old, np.arange(0, 12))  # 97 %: a 1-point drop
    config = GateConfig(delta=0.05, epsilon=0.02)
    base = naive_baselines("binary", y_new, len(y_new))

    rejected = decide("binary", config, Holdout(y_new, candidate_new, current_new),
                      Holdout(y_old, forgets, current_old), base)  # fmt: skip
    assert not rejected.passed
    assert rejected.checks == {"improves": True, "significant": True, "forgetting": False, "baselines": True}
    assert rejected.old.gain == pytest.approx(0.85 - 0.98)
    assert any(r.startswith("FAILED") and "old holdout" in r for r in rejected.reasons)

    promoted = decide("binary", config, Holdout(y_new, candidate_new, current_new),
                      Holdout(y_old, keeps, current_old), base)  # fmt: skip
    assert promoted.passed, promoted.reasons
    assert promoted.new.current == pytest.approx(0.60) and promoted.new.candidate == pytest.approx(0.95)
    assert promoted.new.test.name == "mcnemar-exact" and promoted.new.test.p_value < 1e-6
    json.dumps(promoted.model_dump(mode="json"), allow_nan=False)  # strict JSON


def test_noise_does_not_promote() -> None:
    """Two equally good models that err on different rows: the candidate is 1.5 points ahead by
    chance, above delta, but McNemar's test sees no real difference."""
    y_new, _ = _world(1)
    current = _flip(y_new, np.arange(0, 80))  # 80 % right
    candidate = _flip(y_new, np.arange(86, 160))  # 81.5 % right, wrong on other rows
    decision = decide("binary", GateConfig(delta=0.01), Holdout(y_new, candidate, current))
    assert decision.new.gain == pytest.approx(0.015)
    assert decision.checks["improves"] and not decision.checks["significant"]
    assert decision.new.test.p_value > 0.2
    assert not decision.passed


def test_candidate_must_beat_the_majority_class() -> None:
    y = np.array([0] * 90 + [1] * 10)
    current = np.array([1] * 50 + [0] * 50)  # poor
    candidate = np.zeros(100, dtype=int)
    candidate[90:95] = 1  # 95 %: beats the majority class (90 %)
    decision = decide("binary", GateConfig(), Holdout(y, candidate, current), None, naive_baselines("binary", y, 100))
    assert decision.baselines == {"majority": pytest.approx(0.90)} and decision.passed
    majority_only = np.zeros(100, dtype=int)
    tied = decide("binary", GateConfig(), Holdout(y, majority_only, current), None, naive_baselines("binary", y, 100))
    assert not tied.checks["baselines"] and not tied.passed


def test_regression_paired_bootstrap() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=300)
    current = y + rng.normal(scale=1.0, size=300)
    better = y + rng.normal(scale=0.5, size=300)
    noisy_twin = y + rng.normal(scale=1.0, size=300)
    config = GateConfig(bootstrap=500)
    promoted = decide("regression", config, Holdout(y, better, current), None, naive_baselines("regression", y, 300))
    assert promoted.passed and promoted.metric == "mae" and promoted.new.test.name == "paired-bootstrap"
    assert set(promoted.baselines) == {"mean", "last_value"}
    twin = decide("regression", config, Holdout(y, noisy_twin, current))
    assert not twin.checks["significant"] or not twin.checks["improves"]


def test_mismatched_rows_and_bad_settings_are_user_errors() -> None:
    y = np.zeros(10, dtype=int)
    with pytest.raises(UserError, match="the candidate on the new window's holdout has 9 predictions for 10 rows"):
        decide("binary", GateConfig(), Holdout(y, y[:9], y))
    with pytest.raises(UserError, match="epsilon"):
        load_gate_config({"epsilon": -1})
    with pytest.raises(UserError, match="delt"):
        load_gate_config({"delt": 0.1})

"""The promotion gate: does a candidate model deserve the alias the current one holds?

Both models are judged on the SAME rows: the new window's holdout and the old holdout (the rows
the current version was tested on). The candidate passes when all of these hold:

``improves``     on the new window's holdout its metric beats the current version's by at least
                 ``delta`` (accuracy for classification; the error, ``mae`` or ``rmse``, for regression)
``significant``  and that improvement is no accident of the sample: a one-sided paired test at level
                 ``alpha`` (classification: the exact McNemar test, a binomial test on the rows exactly
                 one of the two models gets right; regression: a paired bootstrap of the error difference)
``forgetting``   on the old holdout its metric drops by at most ``epsilon`` (the forgetting budget)
``baselines``    on the new window's holdout it beats every naive baseline given (the majority class;
                 the training mean or the last value for regression)

`decide` returns a `GateDecision`: every number, each check, and a reason for each failed one, as
strict JSON (no NaN or infinity). Torch-free: the platform calls it with predictions it already has.
The settings are a small file, ``gate.yaml`` (`GateConfig` in ``gate_config.py``, every key optional)::

    delta: 0.0       # the least improvement on the new window (accuracy as a fraction, or error units)
    epsilon: 0.02    # the most the old holdout may drop
    alpha: 0.05      # significance level of the paired test
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from modelworks.errors import UserError
from modelworks.evaluate.gate_config import GateConfig

Task = Literal["binary", "multiclass", "regression"]


@dataclass(frozen=True)
class Holdout:
    """One holdout's true labels and both models' predictions, row for row (labels or values)."""

    y_true: Sequence[Any] | np.ndarray
    candidate: Sequence[Any] | np.ndarray
    current: Sequence[Any] | np.ndarray


class PairedTest(BaseModel):
    name: str  # "mcnemar-exact" or "paired-bootstrap"
    p_value: float
    candidate_only: int | None = None  # McNemar: rows only the candidate gets right
    current_only: int | None = None  # McNemar: rows only the current version gets right
    resamples: int | None = None  # bootstrap


class Comparison(BaseModel):
    """Both models' metric on one holdout; ``gain`` > 0 means the candidate is better."""

    rows: int
    current: float
    candidate: float
    gain: float
    test: PairedTest


class GateDecision(BaseModel):
    passed: bool
    task: Task
    metric: str
    direction: Literal["max", "min"]
    new: Comparison
    old: Comparison | None
    baselines: dict[str, float]
    checks: dict[str, bool]
    reasons: list[str]
    config: GateConfig


# ------------------------------------------------------------------------------------ decision


def decide(
    task: Task,
    config: GateConfig,
    new: Holdout,
    old: Holdout | None = None,
    baselines: Mapping[str, Sequence[Any] | np.ndarray] | None = None,
) -> GateDecision:
    """Judge the candidate against the current version (see the module docstring)."""
    metric, direction, score = _metric(task, config)
    new_cmp = _compare(task, config, new, score, "the new window's holdout")
    old_cmp = _compare(task, config, old, score, "the old holdout") if old is not None else None
    y_new = np.asarray(new.y_true)
    base = {
        name: score(y_new, _checked(pred, len(y_new), f"baseline {name!r}")) for name, pred in (baselines or {}).items()
    }
    checks = {
        "improves": new_cmp.gain >= config.delta,
        "significant": new_cmp.test.p_value < config.alpha,
        "forgetting": old_cmp is None or -old_cmp.gain <= config.epsilon,
        "baselines": not config.beat_baselines or all(_better(new_cmp.candidate, v, direction) for v in base.values()),
    }
    reasons = _reasons(checks, metric, config, new_cmp, old_cmp, base, direction)
    return GateDecision(
        passed=all(checks.values()), task=task, metric=metric, direction=direction, new=new_cmp, old=old_cmp,
        baselines=base, checks=checks, reasons=reasons, config=config,
    )  # fmt: skip


def _reasons(
    checks: dict[str, bool], metric: str, config: GateConfig, new: Comparison, old: Comparison | None,
    base: dict[str, float], direction: str,
) -> list[str]:  # fmt: skip
    """One line per check, saying what was measured against what it needed."""
    ok = {True: "passed", False: "FAILED"}
    lines = [
        f"{ok[checks['improves']]}: {metric} on the new window {new.current:.4f} -> {new.candidate:.4f} "
        f"(gain {new.gain:+.4f}, needs >= {config.delta:g}; {new.rows} rows)",
        f"{ok[checks['significant']]}: {new.test.name} p = {new.test.p_value:.4g} (needs < {config.alpha:g})",
    ]
    if old is None:
        lines.append("passed: no old holdout given; forgetting not measured")
    else:
        lines.append(
            f"{ok[checks['forgetting']]}: {metric} on the old holdout {old.current:.4f} -> {old.candidate:.4f} "
            f"(drop {-old.gain:+.4f}, budget {config.epsilon:g}; {old.rows} rows)"
        )
    for name, value in base.items():
        beaten = _better(new.candidate, value, direction)
        lines.append(f"{ok[beaten or not config.beat_baselines]}: baseline {name} {metric} {value:.4f}")
    return lines


def _better(candidate: float, baseline: float, direction: str) -> bool:
    return candidate > baseline if direction == "max" else candidate < baseline


# ---------------------------------------------------------------------------------- comparisons

Score = Callable[[np.ndarray, np.ndarray], float]


def _metric(task: Task, config: GateConfig) -> tuple[str, str, Score]:
    if task == "regression":
        if config.regression_metric == "rmse":
            return "rmse", "min", lambda y, p: float(np.sqrt(np.mean((p.astype(float) - y.astype(float)) ** 2)))
        return "mae", "min", lambda y, p: float(np.mean(np.abs(p.astype(float) - y.astype(float))))
    return "accuracy", "max", lambda y, p: float(np.mean(correct(y, p)))


def correct(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Row-wise equality of labels, compared as text so that 1, 1.0 and "1" of a decoded label agree."""
    return np.array([_label(a) == _label(b) for a, b in zip(y, p, strict=True)], dtype=bool)


def _label(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    return str(value.item() if isinstance(value, np.generic) else value)


def _checked(values: Sequence[Any] | np.ndarray, rows: int, what: str) -> np.ndarray:
    out = np.asarray(values)
    if out.ndim != 1 or len(out) != rows:
        raise UserError(f"gate: {what} has {len(out)} predictions for {rows} rows; both must be the same rows")
    return out


def _compare(task: Task, config: GateConfig, holdout: Holdout, score: Score, where: str) -> Comparison:
    y = _checked(holdout.y_true, len(np.asarray(holdout.y_true)), f"{where}'s labels")
    if not len(y):
        raise UserError(f"gate: {where} has no rows; the models cannot be compared on it")
    cand = _checked(holdout.candidate, len(y), f"the candidate on {where}")
    cur = _checked(holdout.current, len(y), f"the current version on {where}")
    if task == "regression":
        for name, values in (("labels", y), ("candidate", cand), ("current version", cur)):
            if not np.all(np.isfinite(values.astype(float))):
                raise UserError(f"gate: the {name} on {where} hold values that are not finite numbers")
    current, candidate = score(y, cur), score(y, cand)
    sign = 1.0 if task != "regression" else -1.0
    test = _mcnemar(y, cand, cur) if task != "regression" else _bootstrap(y, cand, cur, score, config)
    return Comparison(rows=len(y), current=current, candidate=candidate, gain=sign * (candidate - current), test=test)


def _mcnemar(y: np.ndarray, cand: np.ndarray, cur: np.ndarray) -> PairedTest:
    """Exact one-sided McNemar: of the rows exactly one model gets right, does the candidate win more
    than half? (A binomial test with p = 0.5 on the discordant pairs.)"""
    from scipy.stats import binomtest  # scipy.stats: imported only when a gate decides

    right_cand, right_cur = correct(y, cand), correct(y, cur)
    b = int(np.sum(right_cand & ~right_cur))
    c = int(np.sum(~right_cand & right_cur))
    p = float(binomtest(b, b + c, 0.5, alternative="greater").pvalue) if b + c else 1.0
    return PairedTest(name="mcnemar-exact", p_value=p, candidate_only=b, current_only=c)


def _bootstrap(y: np.ndarray, cand: np.ndarray, cur: np.ndarray, score: Score, config: GateConfig) -> PairedTest:
    """Paired bootstrap: resample rows (the same rows for both models) and count how often the
    candidate's error is not below the current version's; p = (1 + that count) / (1 + resamples)."""
    rng = np.random.default_rng(config.seed)
    n = len(y)
    y, cand, cur = y.astype(float), cand.astype(float), cur.astype(float)
    not_better = 0
    for _ in range(config.bootstrap):
        idx = rng.integers(0, n, n)
        if score(y[idx], cand[idx]) >= score(y[idx], cur[idx]):
            not_better += 1
    p = (1 + not_better) / (1 + config.bootstrap)
    return PairedTest(name="paired-bootstrap", p_value=float(p), resamples=config.bootstrap)


# ------------------------------------------------------------------------------------ baselines


def naive_baselines(task: Task, y_train: Sequence[Any] | np.ndarray, rows: int) -> dict[str, np.ndarray]:
    """The naive predictions for ``rows`` holdout rows from the training labels: the majority class
    (classification); the training mean and the last value (regression). Same as the report's
    ``dummy`` baseline (`modelworks.evaluate.baselines`), without fitting anything."""
    y = np.asarray(y_train)
    if not len(y):
        return {}
    if task == "regression":
        y = y.astype(float)
        return {"mean": np.full(rows, float(np.mean(y))), "last_value": np.full(rows, float(y[-1]))}
    labels = [_label(v) for v in y]
    values, counts = np.unique(np.asarray(labels, dtype=object), return_counts=True)
    return {"majority": np.full(rows, values[int(np.argmax(counts))], dtype=object)}


def load_gate_config(raw: dict[str, Any] | None, origin: str = "gate") -> GateConfig:
    """A `GateConfig` from a parsed ``gate.yaml`` (None: the defaults); a bad key is a `UserError` naming it."""
    from modelworks.config.load import validate

    return validate(raw or {}, origin, GateConfig)

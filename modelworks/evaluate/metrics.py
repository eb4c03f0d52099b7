"""Evaluation metrics, computed by scikit-learn, returned as one JSON-serializable dict.

The four that validation computes after every epoch (``per_epoch``: accuracy, log loss, RMSE, R²)
are written in NumPy with scikit-learn's exact definitions (its clipping and edge cases): its
input checks cost about a millisecond a call, which fifty epochs of a small job notice.

``compute_metrics`` takes what the model produced after its output activation:

==============  ===========================  =========================================
task            ``output``                   prediction
==============  ===========================  =========================================
``binary``      (N,) P(class 1)              ``output >= threshold``
``multiclass``  (N, K) softmax probabilities ``argmax``
``regression``  (N,) predicted values        the values themselves
==============  ===========================  =========================================

Classification metrics cover all K classes (``labels=range(K)``) so that a class missing from a
small validation split still has its row and column. A metric that is undefined on the given data
(ROC AUC when a class never occurs, say) is ``None``, with the reason in ``metrics["notes"]``;
non-finite values are also stored as ``None`` so the dict stays strict JSON.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.preprocessing import label_binarize

from modelworks.config.schema import EvaluateConfig
from modelworks.data.schema import Task
from modelworks.errors import UserError
from modelworks.registry import Registry

MAX_CURVE_POINTS = 200
DEFAULT_THRESHOLD = EvaluateConfig.model_fields["threshold"].default  # the schema's evaluate.threshold
CLASSIFICATION = ("binary", "multiclass")
REGRESSION = ("regression",)


@dataclass
class Scored:
    """What a metric reads: true values, the model's output and what it predicts.

    Classification: ``y`` class indices (N,), ``y_pred`` predicted classes, ``output`` as passed
    to `compute_metrics`, ``proba`` (N, K), ``complete`` whether every class occurs in ``y``.
    Regression: ``y`` and ``y_pred`` are values; the other fields are unused.
    """

    y: np.ndarray
    y_pred: np.ndarray
    output: np.ndarray | None = None
    proba: np.ndarray | None = None
    labels: list[int] = field(default_factory=list)
    binary: bool = False
    complete: bool = True


# A metric maps `Scored` to a number, or None where it is undefined on the data. Each declares the
# way it improves ("max" or "min") and the tasks it is computed for, in report order; one metric
# per task is its headline metric (``main_for``), and a few cheap ones are also computed on the
# validation split after every epoch (``per_epoch``; `epoch_metrics`).
METRICS: Registry[Callable[[Scored], float | None]] = Registry("metric")


def main_metric(task: Task) -> tuple[str, str]:
    """The headline metric of a task (the one declared ``main_for`` it) and its direction."""
    entry = next(e for e in METRICS if task in e.meta.get("main_for", ()))
    return entry.name, entry.meta["direction"]


def direction(name: str) -> str:
    """``"min"`` or ``"max"``: which way a scalar metric improves (``val_``/``train_`` prefixes ok)."""
    base = name.removeprefix("val_").removeprefix("train_")
    if base not in METRICS:
        prefix = name[: len(name) - len(base)]
        known = ", ".join(prefix + known for known in METRICS.names())
        raise UserError(f"unknown metric {name!r}; choose one of: {known}")
    return METRICS.get(base).meta["direction"]


# ------------------------------------------------------------------------- the training loss


@METRICS.register("loss", direction="min", tasks=())
def loss(scored: Scored) -> float | None:
    """The training objective: logged by the training loop (train_loss, val_loss), not computed here."""
    raise ValueError("the loss is logged by the training loop; compute_metrics does not compute it")


# ---------------------------------------------------------------------------- classification


@METRICS.register("accuracy", direction="max", tasks=CLASSIFICATION, main_for=CLASSIFICATION, per_epoch=True)
def accuracy(s: Scored) -> float | None:
    return float(np.mean(s.y == s.y_pred))  # skm.accuracy_score


def _averaged(score: str, average: str) -> Callable[[Scored], float | None]:
    """Precision, recall or F1 averaged over the classes ("macro" or "weighted")."""
    index = ("precision", "recall", "f1").index(score)

    def metric(s: Scored) -> float | None:
        with warnings.catch_warnings():  # classes never predicted get 0; sklearn warns each time
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            return skm.precision_recall_fscore_support(s.y, s.y_pred, average=average, zero_division=0)[index]

    metric.__name__ = f"{score}_{average}"
    return metric


for _average in ("macro", "weighted"):
    for _score in ("precision", "recall", "f1"):
        METRICS.register(f"{_score}_{_average}", direction="max", tasks=CLASSIFICATION)(_averaged(_score, _average))


@METRICS.register("roc_auc", direction="max", tasks=CLASSIFICATION)
def roc_auc(s: Scored) -> float | None:
    if not s.complete:
        return None
    if s.binary or len(s.labels) == 2:  # a 2-class multiclass output is scored as binary, as sklearn wants
        return skm.roc_auc_score(s.y, s.proba[:, 1])
    return skm.roc_auc_score(s.y, s.proba, multi_class="ovr", average="macro", labels=s.labels)


@METRICS.register("pr_auc", direction="max", tasks=CLASSIFICATION)
def pr_auc(s: Scored) -> float | None:
    if not s.complete:
        return None
    if s.binary or len(s.labels) == 2:
        return skm.average_precision_score(s.y, s.proba[:, 1])
    return skm.average_precision_score(label_binarize(s.y, classes=s.labels), s.proba, average="macro")


@METRICS.register("log_loss", direction="min", tasks=CLASSIFICATION, per_epoch=True)
def log_loss(s: Scored) -> float | None:
    """skm.log_loss(y, proba, labels): the probabilities clipped to [eps, 1 - eps] first."""
    eps = np.finfo(s.proba.dtype).eps
    picked = np.clip(s.proba, eps, 1 - eps)[np.arange(len(s.y)), s.y]  # P(the true class) per row
    return float(-np.mean(np.log(picked)))


# -------------------------------------------------------------------------------- regression


@METRICS.register("mse", direction="min", tasks=REGRESSION)
def mse(s: Scored) -> float | None:
    return skm.mean_squared_error(s.y, s.y_pred)


@METRICS.register("rmse", direction="min", tasks=REGRESSION, main_for=REGRESSION, per_epoch=True)
def rmse(s: Scored) -> float | None:
    return float(np.sqrt(np.mean((s.y - s.y_pred) ** 2)))  # skm.root_mean_squared_error


@METRICS.register("mae", direction="min", tasks=REGRESSION)
def mae(s: Scored) -> float | None:
    return skm.mean_absolute_error(s.y, s.y_pred)


@METRICS.register("r2", direction="max", tasks=REGRESSION, per_epoch=True)
def r2(s: Scored) -> float | None:
    """skm.r2_score: undefined (None) below two samples, noted in the report; a constant target
    scores 1.0 when predicted exactly, else 0.0."""
    if len(s.y) < 2:
        return None
    residual = np.sum((s.y - s.y_pred) ** 2)
    total = np.sum((s.y - np.mean(s.y)) ** 2)
    if total == 0:
        return 1.0 if residual == 0 else 0.0
    return float(1 - residual / total)


def _scalars(task: str, scored: Scored) -> dict[str, float | None]:
    """Every registered metric for `task`, in registration order; None where undefined or not finite."""
    return {e.name: _num(e.impl(scored)) for e in METRICS if task in e.meta["tasks"]}


# ------------------------------------------------------------------------------------ compute


def summarize(metrics: dict[str, Any]) -> dict[str, float]:
    """Only the scalar metrics (for tables and logs); undefined ones (``None``) are left out."""
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)
    }


def compute_metrics(
    task: Task,
    y_true: np.ndarray,
    output: np.ndarray,
    class_names: list[str] | None,
    threshold: float = DEFAULT_THRESHOLD,
) -> dict[str, Any]:
    """All metrics for one task on one split; see the module docstring for the shape of ``output``."""
    y_true, output = _checked(task, y_true, output)
    if task == "regression":
        return _regression(y_true.astype(np.float64).ravel(), output.ravel())
    return _classification(y_true, output, class_names, threshold)


def epoch_metrics(
    task: Task, y_true: np.ndarray, output: np.ndarray, also: Iterable[str] = (), threshold: float = DEFAULT_THRESHOLD
) -> dict[str, float]:
    """The scalar metrics validation computes after every epoch: those declared ``per_epoch`` for
    `task`, plus the ones named in `also` (what early stopping and callbacks watch, without a
    ``val_`` prefix). Undefined values are left out, as in `summarize`. The full set, with the
    confusion matrix, per-class table and curves, is `compute_metrics`, run once at the end."""
    y_true, output = _checked(task, y_true, output)
    wanted = set(also)
    if task == "regression":
        scored = Scored(y_true.astype(np.float64).ravel(), output.ravel())
    else:
        scored = _scored(y_true, output, threshold)
    values = {
        e.name: _num(e.impl(scored))
        for e in METRICS
        if task in e.meta["tasks"] and (e.meta.get("per_epoch") or e.name in wanted)
    }
    return summarize(values)


def _checked(task: Task, y_true: np.ndarray, output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`y_true` and `output` as arrays, checked against the layout `task` expects."""
    y_true = np.asarray(y_true)
    output = np.asarray(output, dtype=np.float64)
    if len(y_true) == 0:
        raise ValueError("compute_metrics needs at least one sample; got an empty y_true")
    if len(output) != len(y_true):
        raise ValueError(f"y_true and output must have the same length; got {len(y_true)} and {len(output)}")
    if task == "binary" and output.ndim != 1:
        raise ValueError(f"binary output must be (N,) probabilities of class 1; got shape {output.shape}")
    if task == "multiclass" and output.ndim != 2:
        raise ValueError(f"multiclass output must be (N, K) probabilities; got shape {output.shape}")
    if task not in ("binary", "multiclass", "regression"):
        raise ValueError(f"task must be 'binary', 'multiclass' or 'regression'; got {task!r}")
    return y_true, output


# ---------------------------------------------------------------------------------- regression


def _regression(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    notes: list[str] = []
    if len(y_true) < 2:
        notes.append("r2 is undefined with fewer than two samples")
    return {**_scalars("regression", Scored(y_true, y_pred)), "notes": notes}


# ------------------------------------------------------------------------------ classification


def _scored(y_true: np.ndarray, output: np.ndarray, threshold: float) -> Scored:
    """What the classification metrics read: class indices, predictions and (N, K) probabilities."""
    binary = output.ndim == 1
    k = 2 if binary else output.shape[1]
    y = y_true.astype(np.int64).ravel()
    if not np.array_equal(y, y_true.ravel()) or y.min() < 0 or y.max() >= k:
        raise ValueError(f"y_true must hold class indices in [0, {k}); got values {np.unique(y_true)[:10]}")
    if binary:
        y_pred = (output >= threshold).astype(np.int64)
        proba = np.stack([1.0 - output, output], axis=1)  # (N, 2)
    else:
        y_pred = output.argmax(axis=1)
        proba = output / output.sum(axis=1, keepdims=True)  # exact row sums for sklearn's check
    labels = list(range(k))
    complete = len(np.unique(y)) == k
    return Scored(y, y_pred, output, proba, labels, binary, complete=complete)


def _classification(
    y_true: np.ndarray, output: np.ndarray, class_names: list[str] | None, threshold: float
) -> dict[str, Any]:
    scored = _scored(y_true, output, threshold)
    y, y_pred, proba, labels = scored.y, scored.y_pred, scored.proba, scored.labels
    names = [str(n) for n in class_names] if class_names is not None else [str(i) for i in labels]
    if len(names) != len(labels):
        raise ValueError(f"class_names must name all {len(labels)} classes; got {len(names)}: {names}")

    present = set(np.unique(y).tolist())
    missing = [names[i] for i in labels if i not in present]
    notes: list[str] = []
    if missing:
        notes.append(
            f"classes absent from y_true: {', '.join(missing)}; roc_auc and pr_auc are undefined, "
            "and those classes have no ROC or PR curve"
        )

    with warnings.catch_warnings():
        # Classes never predicted (or never present) get precision/recall 0; sklearn warns each time.
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        precision, recall, f1, support = skm.precision_recall_fscore_support(y, y_pred, labels=labels, zero_division=0)

    result: dict[str, Any] = _scalars("binary" if scored.binary else "multiclass", scored)
    result["confusion_matrix"] = skm.confusion_matrix(y, y_pred, labels=labels).tolist()
    result["per_class"] = {
        names[i]: {
            "precision": _num(precision[i]),
            "recall": _num(recall[i]),
            "f1": _num(f1[i]),
            "support": int(support[i]),
        }
        for i in labels
    }
    result["curves"] = _curves(y, output, proba, names, present, scored.binary)
    result["notes"] = notes
    return result


def _curves(
    y: np.ndarray, output: np.ndarray, proba: np.ndarray, names: list[str], present: set[int], binary: bool
) -> dict[str, dict[str, dict[str, list[float]]]]:
    """ROC and PR curves keyed by class name: the positive class alone for binary, one-vs-rest otherwise."""
    roc: dict[str, dict[str, list[float]]] = {}
    pr: dict[str, dict[str, list[float]]] = {}
    if binary:
        targets = [(1, output)] if present == {0, 1} else []
    else:
        # One-vs-rest needs both a positive and a negative example of the class.
        targets = [(i, proba[:, i]) for i in range(len(names)) if i in present and len(present) > 1]
    for i, score in targets:
        positive = (y == i).astype(np.int64)
        fpr, tpr, _ = skm.roc_curve(positive, score)
        precision, recall, _ = skm.precision_recall_curve(positive, score)
        roc[names[i]] = {"fpr": _downsample(fpr), "tpr": _downsample(tpr)}
        pr[names[i]] = {"precision": _downsample(precision), "recall": _downsample(recall)}
    return {"roc": roc, "pr": pr}


# --------------------------------------------------------------------------------------- helpers


def _downsample(values: np.ndarray, max_points: int = MAX_CURVE_POINTS) -> list[float]:
    """At most ``max_points`` evenly spaced points, always keeping both ends; rounded for small JSON."""
    if len(values) > max_points:
        values = values[np.linspace(0, len(values) - 1, max_points).round().astype(int)]
    return [round(float(v), 6) for v in values]


def _num(value: Any) -> float | None:
    """A plain float, or ``None`` for undefined values, NaN and infinities, which strict JSON cannot hold."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None

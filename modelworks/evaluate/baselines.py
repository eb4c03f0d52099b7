"""Classical baselines beside every run: what ten lines of scikit-learn reach on the same rows.

`run_baselines` fits each baseline named in ``evaluate.baselines`` on the run's training split and
scores it on the rows the model is evaluated on, with the same metrics:

``dummy``   the majority class (classification) or the training mean (regression)
``linear``  a linear SVM (classification; its decision scores through a softmax, or a sigmoid
            for binary, stand in for probabilities) or ridge regression on the same features:
            TF-IDF word 1-2-grams of each text column (character 1-3-grams when the text is
            mostly CJK, which has no spaces), the preprocessed numeric columns, one-hot
            categories, and the pixels of images (pooled down to at most 32x32)

Baselines are cheap by construction (at most `MAX_TRAIN_ROWS` training rows and
`MAX_TEXT_FEATURES` n-grams per text column) and never fail a run: a baseline that errors is
recorded as skipped with the reason.
"""

from __future__ import annotations

import importlib
import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.exceptions import ConvergenceWarning

from modelworks.config.schema import EvaluateConfig
from modelworks.data.batches import TensorBatches
from modelworks.data.feature_types import Feature
from modelworks.data.schema import CATEGORICAL, NUMERIC, TARGET, InputSchema
from modelworks.evaluate.metrics import epoch_metrics, main_metric
from modelworks.store.report import BaselineResult, Baselines

MAX_TRAIN_ROWS = 20_000  # training rows a baseline sees at most (a random sample beyond)
MAX_TEXT_FEATURES = 100_000  # n-grams per text column
MAX_IMAGE_SIDE = 32  # images are average-pooled down to at most this many pixels a side
MAX_SVM_CELLS = 2_000_000  # dense pixel values (rows x columns) past which a ridge classifier replaces the SVM
CJK_SHARE = 0.3  # text whose non-space characters are at least this share CJK gets character n-grams
KEPT_METRICS = ("accuracy", "f1_macro", "roc_auc", "rmse", "mae", "r2")  # shown beside the model's
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
# scikit-learn's estimators, imported by the baselines that use them (a few tenths of a second that a
# run without text or categories does not need); module attributes, e.g. `baselines.LinearSVC`
_ESTIMATORS = {
    "DummyClassifier": "sklearn.dummy", "DummyRegressor": "sklearn.dummy", "Ridge": "sklearn.linear_model",
    "RidgeClassifier": "sklearn.linear_model",
    "LinearSVC": "sklearn.svm", "TfidfVectorizer": "sklearn.feature_extraction.text",
    "OneHotEncoder": "sklearn.preprocessing",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in _ESTIMATORS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value = getattr(importlib.import_module(_ESTIMATORS[name]), name)
    return value


def _estimator(name: str) -> Any:
    """One of `_ESTIMATORS`: the module attribute (imported on first use)."""
    return globals()[name] if name in globals() else __getattr__(name)


@dataclass
class Rows:
    """One split as both the raw frame (for text) and the preprocessed tensors, row for row."""

    frame: pd.DataFrame
    tensors: dict[str, torch.Tensor]


def is_cjk(texts: Sequence[str]) -> bool:
    """Whether `texts` are mostly Chinese, Japanese or Korean characters (no spaces between words)."""
    sample = "".join(texts[:2000])
    letters = sum(not c.isspace() for c in sample)
    return letters > 0 and len(_CJK.findall(sample)) / letters >= CJK_SHARE


def run_baselines(
    evaluate: EvaluateConfig,
    features: Sequence[Feature] | None,
    schema: InputSchema,
    train: tuple[pd.DataFrame, TensorBatches],
    test: tuple[pd.DataFrame, TensorBatches],
    model_summary: dict[str, float | None],
) -> Baselines | None:
    """``evaluate.baselines`` fitted on the `train` rows and scored on the `test` rows, each given as
    (raw frame, preprocessed batches) row for row; None when none are configured.

    Never raises: whatever goes wrong becomes the note of a result without a margin.
    """
    if not evaluate.baselines:
        return None
    try:
        texts = [f.name for f in features or [] if f.type == "text"]
        rows = [Rows(frame, {k: v.cpu() for k, v in batches.decoded().items()}) for frame, batches in (train, test)]
        return fit_baselines(evaluate.baselines, schema, texts, *rows, model_summary, evaluate.threshold)
    except Exception as e:  # noqa: BLE001  a baseline is a comparison, never a reason for the run to fail
        note = f"baselines not computed: {type(e).__name__}: {e}"[:300]
        return Baselines(metric=main_metric(schema.task)[0], note=note)


def over_folds(per_fold: Sequence[Baselines | None]) -> tuple[float | None, str | None]:
    """(the model's mean margin over each fold's best baseline, one plain sentence about it) for a
    cross-validation; (None, None) without baselines."""
    given = [b for b in per_fold if b is not None]
    if not given:
        return None, None
    margins = [b.margin for b in given if b.margin is not None]
    if not margins:
        return None, given[0].verdict()
    mean, wins, n = float(np.mean(margins)), sum(m > 0 for m in margins), len(margins)
    metric = given[0].metric
    model = np.mean([b.model_value for b in given if b.margin is not None])
    best = np.mean([b.best_value for b in given if b.margin is not None])
    versus = (
        f"mean {metric} {model:.4f} vs {best:.4f} for the best baseline of each fold; better in {wins} of {n} folds"
    )
    if mean > 0:
        return mean, f"the model beats its best baseline by {mean:.4f} on average over {n} folds ({versus})"
    return (
        mean,
        f"the model does NOT beat its best baseline on average over {n} folds (mean margin {mean:+.4f}; {versus})",
    )


def fit_baselines(
    names: Sequence[str],
    schema: InputSchema,
    text_columns: Sequence[str],
    train: Rows,
    test: Rows,
    model_summary: dict[str, float | None],
    threshold: float,
) -> Baselines:
    """Fit each named baseline on `train`, score it on `test`, and compare with the model's summary."""
    sample = _sample(len(train.frame))
    train = Rows(train.frame.iloc[sample], {k: v[torch.as_tensor(sample)] for k, v in train.tensors.items()})
    results = [_one(name, schema, text_columns, train, test, threshold) for name in names]
    return against_model(Baselines(metric=main_metric(schema.task)[0], results=results), schema.task, model_summary)


def against_model(
    baselines: Baselines, task: str, model_summary: dict[str, float | None], note: str | None = None
) -> Baselines:
    """`baselines` with their best, and the margin of the model whose scalar metrics are `model_summary`
    over it (a copy: the same fitted baselines set against another model, e.g. a compressed one)."""
    metric, direction = main_metric(task)
    scored = [r for r in baselines.results if r.skipped is None and r.summary.get(metric) is not None]
    out = Baselines(metric=metric, results=baselines.results, model_value=model_summary.get(metric))
    out.note = note if note is not None else baselines.note
    if scored:
        pick = max if direction == "max" else min
        best = pick(scored, key=lambda r: r.summary[metric])
        out.best, out.best_value = best.name, best.summary[metric]
        if out.model_value is not None:
            sign = 1.0 if direction == "max" else -1.0
            out.margin = sign * (out.model_value - out.best_value)
    return out


def _sample(n: int) -> np.ndarray:
    if n <= MAX_TRAIN_ROWS:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, MAX_TRAIN_ROWS, replace=False))


def _one(name: str, schema: InputSchema, text_columns: Sequence[str], train: Rows, test: Rows, threshold: float):
    started = time.perf_counter()
    try:
        if name == "dummy":
            method = "majority class" if schema.task != "regression" else "training mean"
            regression = schema.task == "regression"
            model = _estimator("DummyRegressor")() if regression else _estimator("DummyClassifier")(strategy="prior")
            x_train, x_test = np.zeros((len(train.frame), 1)), np.zeros((len(test.frame), 1))
        else:
            featurizer = _Features(text_columns)
            x_train, x_test = featurizer.fit_transform(train), featurizer.transform(test)
            if (
                any(k.startswith("image.") for k in train.tensors)
                and x_train.shape[0] * x_train.shape[1] > MAX_SVM_CELLS
            ):
                # many dense pixel columns: a linear SVM's coordinate descent takes minutes on 20,000
                # 28x28 images (197 s on Fashion-MNIST), a ridge classifier's closed form about a
                # second at the same accuracy (0.811 against 0.813 on the same rows); on small images
                # (digits: 0.961 against 0.933) the SVM is both quick and the stronger baseline
                x_train, x_test = x_train.toarray(), x_test.toarray()
                linear = "RidgeClassifier"
            else:
                linear = "LinearSVC"
            kind = {"RidgeClassifier": "ridge classifier", "LinearSVC": "linear SVM"}[linear]
            kind = "ridge regression" if schema.task == "regression" else kind
            method = f"{' + '.join(featurizer.described)} -> {kind}"
            model = _estimator("Ridge")() if schema.task == "regression" else _estimator(linear)()
        y_train, y_test = train.tensors[TARGET].numpy(), test.tensors[TARGET].numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a capped iteration count is part of cheap
            model.fit(x_train, y_train.astype(np.int64) if schema.task != "regression" else y_train)
        output = _output(model, x_test, schema)
        scalars = epoch_metrics(schema.task, y_test, output, KEPT_METRICS, threshold)  # no curves or tables
        summary = {k: v for k, v in scalars.items() if k in KEPT_METRICS}
        seconds = round(time.perf_counter() - started, 3)
        return BaselineResult(name=name, method=method, summary=summary, seconds=seconds, train_rows=len(train.frame))
    except Exception as e:  # noqa: BLE001  a baseline is a comparison, never a reason for the run to fail
        return BaselineResult(name=name, skipped=f"{type(e).__name__}: {e}"[:300])


def _output(model, x, schema: InputSchema) -> np.ndarray:
    """The model's output in `compute_metrics`' layout: P(class 1), (N, K) probabilities, or values."""
    if schema.task == "regression":
        return model.predict(x)
    if not hasattr(model, "predict_proba"):  # a linear SVM or ridge: a sigmoid or a softmax of its scores
        scores = model.decision_function(x)
        if scores.ndim == 1:
            return 1.0 / (1.0 + np.exp(-scores))
        model_proba = np.exp(scores - scores.max(axis=1, keepdims=True))
        model_proba /= model_proba.sum(axis=1, keepdims=True)
    else:
        model_proba = model.predict_proba(x)
    proba = np.zeros((x.shape[0], schema.num_classes))
    proba[:, model.classes_.astype(np.int64)] = model_proba
    return proba[:, 1] if schema.task == "binary" else proba


class _Features:
    """The linear baseline's features: TF-IDF per text column, then every other input, sparse."""

    def __init__(self, text_columns: Sequence[str]) -> None:
        self.text_columns = list(text_columns)
        self.described: list[str] = []

    def fit_transform(self, rows: Rows) -> sp.csr_matrix:
        self.vectorizers = {}
        for column in self.text_columns:
            texts = _texts(rows.frame, column)
            cjk = is_cjk(texts)
            self.vectorizers[column] = _estimator("TfidfVectorizer")(
                analyzer="char" if cjk else "word", ngram_range=(1, 3) if cjk else (1, 2),
                sublinear_tf=True, max_features=MAX_TEXT_FEATURES, min_df=1,
            )  # fmt: skip
            self.described.append(f"TF-IDF {'character 1-3' if cjk else 'word 1-2'}-grams of {column}")
        self.onehot = None
        if CATEGORICAL in rows.tensors:
            self.onehot = _estimator("OneHotEncoder")(handle_unknown="ignore").fit(rows.tensors[CATEGORICAL].numpy())
        parts = [v.fit_transform(_texts(rows.frame, c)) for c, v in self.vectorizers.items()]
        if NUMERIC in rows.tensors:
            self.described.append("numeric columns")
        if self.onehot is not None:
            self.described.append("one-hot categories")
        if any(k.startswith("image.") for k in rows.tensors):
            self.described.append("pixels")
        return sp.hstack([*parts, *self._others(rows)], format="csr")

    def transform(self, rows: Rows) -> sp.csr_matrix:
        parts = [v.transform(_texts(rows.frame, c)) for c, v in self.vectorizers.items()]
        return sp.hstack([*parts, *self._others(rows)], format="csr")

    def _others(self, rows: Rows) -> list:
        out = []
        if NUMERIC in rows.tensors:
            out.append(sp.csr_matrix(rows.tensors[NUMERIC].numpy().astype(np.float64)))
        if self.onehot is not None:
            out.append(self.onehot.transform(rows.tensors[CATEGORICAL].numpy()))
        for key in sorted(k for k in rows.tensors if k.startswith("image.")):
            images = rows.tensors[key].float()  # (N, C, H, W)
            if max(images.shape[2:]) > MAX_IMAGE_SIDE:
                images = torch.nn.functional.adaptive_avg_pool2d(images, MAX_IMAGE_SIDE)
            out.append(sp.csr_matrix(images.flatten(1).numpy().astype(np.float64)))
        return out


def _texts(frame: pd.DataFrame, column: str) -> list[str]:
    return frame[column].fillna("").astype(str).tolist()

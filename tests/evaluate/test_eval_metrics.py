"""Metric values on small cases that can be checked by hand (or against scikit-learn directly)."""

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from modelworks.errors import UserError
from modelworks.evaluate.metrics import MAX_CURVE_POINTS, METRICS, compute_metrics, direction, main_metric, summarize


def test_perfect_multiclass_predictions():
    y = np.array([0, 1, 2, 2, 1, 0])
    proba = np.eye(3)[y] * 0.98 + 0.01  # rows sum to 1.01; compute_metrics renormalizes
    m = compute_metrics("multiclass", y, proba, ["cat", "dog", "bird"])
    assert m["accuracy"] == 1.0
    assert m["f1_macro"] == m["f1_weighted"] == 1.0
    assert m["confusion_matrix"] == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]
    assert m["roc_auc"] == 1.0 and m["pr_auc"] == 1.0
    assert m["per_class"]["dog"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert set(m["curves"]["roc"]) == {"cat", "dog", "bird"}
    assert m["notes"] == []
    json.dumps(m, allow_nan=False)


def test_binary_case_by_hand():
    # Scores 0.1 0.4 0.35 0.8 for labels 0 0 1 1: of the 4 (pos, neg) pairs, 3 are ranked right.
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    m = compute_metrics("binary", y, p, ["no", "yes"])
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    # Threshold 0.5 predicts 0 0 0 1: accuracy 3/4; confusion [[2, 0], [1, 1]].
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["confusion_matrix"] == [[2, 0], [1, 1]]
    assert m["per_class"]["yes"]["precision"] == 1.0
    assert m["per_class"]["yes"]["recall"] == 0.5
    assert m["per_class"]["no"]["recall"] == 1.0
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.6, 0.35, 0.8])))
    assert list(m["curves"]["roc"]) == ["yes"]
    # A lower threshold changes the predictions but not the ranking metrics.
    low = compute_metrics("binary", y, p, ["no", "yes"], threshold=0.3)
    assert low["confusion_matrix"] == [[1, 1], [0, 2]]
    assert low["roc_auc"] == m["roc_auc"]


def test_binary_accepts_float_targets_and_rejects_bad_labels():
    m = compute_metrics("binary", np.array([0.0, 1.0]), np.array([0.2, 0.7]), None)
    assert m["accuracy"] == 1.0 and list(m["per_class"]) == ["0", "1"]
    with pytest.raises(ValueError, match="class indices"):
        compute_metrics("binary", np.array([0, 2]), np.array([0.2, 0.7]), None)
    with pytest.raises(ValueError, match="same length"):
        compute_metrics("binary", np.array([0, 1, 1]), np.array([0.2, 0.7]), None)


def test_multiclass_with_a_class_absent_from_y_true():
    y = np.array([0, 0, 1, 1, 0])
    proba = np.array([[0.9, 0.1, 0.0], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4]])
    m = compute_metrics("multiclass", y, proba, ["a", "b", "c"])
    assert m["roc_auc"] is None and m["pr_auc"] is None
    assert len(m["notes"]) == 1 and "c" in m["notes"][0]
    assert m["per_class"]["c"]["support"] == 0
    assert m["confusion_matrix"] == [[2, 0, 1], [0, 2, 0], [0, 0, 0]]
    assert set(m["curves"]["roc"]) == {"a", "b"}  # no curve without a positive example
    assert m["log_loss"] is not None
    assert "roc_auc" not in summarize(m)
    json.dumps(m, allow_nan=False)


def test_binary_with_one_class_only():
    m = compute_metrics("binary", np.array([1, 1, 1]), np.array([0.9, 0.2, 0.7]), ["neg", "pos"])
    assert m["roc_auc"] is None and m["notes"]
    assert m["curves"] == {"roc": {}, "pr": {}}
    assert m["accuracy"] == pytest.approx(2 / 3)


def test_long_curves_are_downsampled():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 5000)
    p = np.clip(y * 0.3 + rng.random(5000) * 0.7, 0, 1)
    m = compute_metrics("binary", y, p, None)
    roc = m["curves"]["roc"]["1"]
    assert len(roc["fpr"]) == len(roc["tpr"]) <= MAX_CURVE_POINTS
    assert roc["fpr"][0] == 0.0 and roc["fpr"][-1] == 1.0 and roc["tpr"][-1] == 1.0
    assert len(m["curves"]["pr"]["1"]["precision"]) <= MAX_CURVE_POINTS


def test_regression_metrics():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    pred = np.array([1.0, 2.0, 3.0, 6.0])  # one error of 2
    m = compute_metrics("regression", y, pred, None)
    assert m["mse"] == pytest.approx(1.0)
    assert m["rmse"] == pytest.approx(1.0)
    assert m["mae"] == pytest.approx(0.5)
    assert m["r2"] == pytest.approx(1 - 4 / 5)  # SS_res 4, SS_tot 5
    assert summarize(m) == {"mse": 1.0, "rmse": 1.0, "mae": 0.5, "r2": pytest.approx(0.2)}


def test_regression_with_one_sample_has_no_r2():
    m = compute_metrics("regression", np.array([1.0]), np.array([2.0]), None)
    assert m["r2"] is None and m["notes"]
    json.dumps(m, allow_nan=False)


def test_main_metric_and_direction():
    assert main_metric("binary") == ("accuracy", "max")
    assert main_metric("multiclass") == ("accuracy", "max")
    assert main_metric("regression") == ("rmse", "min")
    assert direction("val_loss") == "min" and direction("log_loss") == "min" and direction("rmse") == "min"
    assert direction("val_f1_macro") == "max" and direction("r2") == "max"


def test_summarize_keeps_only_finite_scalars():
    assert summarize({"a": 1, "b": 0.5, "c": None, "d": [1], "e": {"x": 1}, "f": True, "g": float("nan")}) == {
        "a": 1.0,
        "b": 0.5,
    }


def test_direction_is_declared_and_an_unknown_metric_names_the_known_ones():
    for entry in METRICS:
        assert direction(entry.name) == direction(f"val_{entry.name}") == direction(f"train_{entry.name}")
        assert direction(entry.name) == entry.meta["direction"]
    with pytest.raises(UserError, match="val_acuracy.*val_accuracy"):
        direction("val_acuracy")


@pytest.mark.parametrize(
    "task, y, output",
    [
        ("binary", np.array([0, 1, 1, 0]), np.array([0.2, 0.8, 0.6, 0.4])),
        ("multiclass", np.array([0, 1, 2, 1]), np.full((4, 3), 1 / 3)),
        ("regression", np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 2.0])),
    ],
)
def test_every_scalar_is_a_registered_metric_for_its_task(task, y, output):
    scalars = summarize(compute_metrics(task, y, output, None))
    assert list(scalars) == [e.name for e in METRICS if task in e.meta["tasks"]]
    for name in scalars:
        direction(name)  # every reported metric has a declared direction


def test_issue14_numpy_epoch_metrics_equal_scikit_learns():
    # accuracy, log loss, RMSE and R2 run after every epoch in NumPy; the values are sklearn's
    from sklearn import metrics as skm

    rng = np.random.default_rng(0)
    y2, p = rng.integers(0, 2, 57), rng.random(57)
    p[:3] = [0.0, 1.0, 1e-20]  # clipped to [eps, 1 - eps] as sklearn does
    m = compute_metrics("binary", y2, p, None)
    assert m["accuracy"] == skm.accuracy_score(y2, p >= 0.5)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y2, p, labels=[0, 1]), rel=1e-12)
    y5, raw = rng.integers(0, 5, 90), rng.random((90, 5))
    proba = raw / raw.sum(axis=1, keepdims=True)
    m = compute_metrics("multiclass", y5, proba, None)
    assert m["accuracy"] == skm.accuracy_score(y5, proba.argmax(axis=1))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y5, proba, labels=list(range(5))), rel=1e-12)
    y, pred = rng.normal(size=40), rng.normal(size=40)
    m = compute_metrics("regression", y, pred, None)
    assert m["rmse"] == pytest.approx(skm.root_mean_squared_error(y, pred), rel=1e-12)
    assert m["r2"] == pytest.approx(skm.r2_score(y, pred), rel=1e-12)
    constant = np.full(4, 2.0)
    assert compute_metrics("regression", constant, constant, None)["r2"] == skm.r2_score(constant, constant) == 1.0
    assert compute_metrics("regression", constant, constant + 1, None)["r2"] == skm.r2_score(constant, constant + 1)

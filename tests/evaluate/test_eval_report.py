"""Report files: both written, the HTML self-contained with every expected plot, text escaped."""

import json
import re

import numpy as np
import pytest

from modelworks.errors import UserError
from modelworks.evaluate.metrics import compute_metrics
from modelworks.evaluate.report import read_history, write_report
from modelworks.store.atomic import atomic_write_bytes, atomic_write_text

IMG = '<figure role="img"'
CLASSES = ["<cat>", "dog & co", "$bird$"]  # HTML-special and mathtext-special on purpose


def _history(epochs: int = 3, steps_per_epoch: int = 4) -> list[dict]:
    records = []
    for e in range(1, epochs + 1):
        for s in range(steps_per_epoch):
            step = (e - 1) * steps_per_epoch + s + 1
            records.append({"kind": "step", "step": step, "epoch": e, "loss": 1.0 / step, "lr": 1e-3})
        records.append(
            {
                "kind": "epoch", "epoch": e, "step": e * steps_per_epoch, "lr": 1e-3, "elapsed_s": 0.1 * e,
                "train_loss": 1.0 / e, "val_loss": 1.2 / e, "val_accuracy": 0.5 + 0.1 * e,
                "val_f1_macro": 0.4 + 0.1 * e, "train_accuracy": 0.6 + 0.1 * e,
            }
        )  # fmt: skip
    return records


def _multiclass_metrics() -> dict:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    proba = rng.dirichlet([1, 1, 1], 60) * 0.5 + np.eye(3)[y] * 0.5
    return compute_metrics("multiclass", y, proba, CLASSES)


def test_classification_report(tmp_path):
    metrics = _multiclass_metrics()
    extra = {"model": {"type": "mlp", "hidden": [64, 32]}, "params": 12345, "split_sizes": {"train": 48, "val": 12}}
    json_path, html_path = write_report(tmp_path, "Iris <run>", metrics, _history(), "multiclass", CLASSES, extra)

    assert json_path == tmp_path / "report.json" and html_path == tmp_path / "report.html"
    report = json.loads(json_path.read_text())
    assert report["main_metric"]["name"] == "accuracy"
    assert report["main_metric"]["value"] == metrics["accuracy"]
    assert report["summary"]["f1_macro"] == metrics["f1_macro"]
    assert report["extra"]["params"] == 12345
    assert report["metrics"]["confusion_matrix"] == metrics["confusion_matrix"]

    page = html_path.read_text()
    # loss curve, validation metric curves, confusion matrix, ROC, PR
    assert page.count(IMG) == 5
    for alt in ("loss curves", "validation metric curves", "confusion matrix", "ROC curves", "precision-recall curves"):
        assert f'aria-label="{alt}"' in page
    assert "&lt;cat&gt;" in page and "dog &amp; co" in page and "<cat>" not in page
    assert "Iris &lt;run&gt;" in page
    assert "model.type" in page and "12,345" in page
    # Self-contained: nothing fetched from elsewhere.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries behind


def test_binary_report_without_history(tmp_path):
    y = np.array([0, 1, 1, 0, 1])
    metrics = compute_metrics("binary", y, np.array([0.2, 0.9, 0.6, 0.4, 0.3]), ["no", "yes"])
    _, html_path = write_report(tmp_path, "binary", metrics, [], "binary", ["no", "yes"])
    page = html_path.read_text()
    assert page.count(IMG) == 3  # confusion matrix, ROC, PR
    assert "No training history" in page


def test_report_with_missing_class_shows_note(tmp_path):
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7]])
    metrics = compute_metrics("multiclass", y, proba, ["a", "b", "c"])
    json_path, html_path = write_report(tmp_path, "t", metrics, _history(1), "multiclass", ["a", "b", "c"])
    assert json.loads(json_path.read_text())["metrics"]["roc_auc"] is None
    page = html_path.read_text()
    assert "classes absent from y_true: c" in page
    assert page.count(IMG) == 5


def test_regression_report(tmp_path):
    y = np.linspace(0, 10, 3000)
    pred = y + np.random.default_rng(0).normal(0, 0.5, y.shape)
    metrics = compute_metrics("regression", y, pred, None)
    history = [
        {"kind": "epoch", "epoch": e, "step": 10 * e, "train_loss": 1 / e, "val_loss": 1.1 / e, "val_rmse": 1 / e,
         "val_r2": 1 - 1 / e}
        for e in range(1, 4)
    ]  # fmt: skip
    predictions = {"y_true": y.tolist(), "y_pred": pred.tolist()}
    json_path, html_path = write_report(tmp_path, "reg", metrics, history, "regression", None, None, predictions)
    report = json.loads(json_path.read_text())
    assert report["main_metric"] == {"name": "rmse", "direction": "min", "value": metrics["rmse"]}
    page = html_path.read_text()
    assert page.count(IMG) == 3  # loss, metric curves, predicted vs true
    assert 'aria-label="predicted versus true values"' in page


def test_read_history_skips_truncated_last_line(tmp_path):
    lines = [json.dumps(r) for r in _history(2, 2)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n" + lines[0][:17])
    history = read_history(tmp_path)
    assert len(history) == len(lines)
    assert history[-1]["kind"] == "epoch" and history[-1]["epoch"] == 2


def test_read_history_keeps_last_line_without_newline(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"kind": "step", "step": 1, "loss": 0.5}\n\n{"kind": "step", "step": 2}')
    assert [r["step"] for r in read_history(tmp_path)] == [1, 2]


def test_read_history_missing_file_and_damaged_middle(tmp_path):
    assert read_history(tmp_path) == []
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{"ste\n{"step": 3}\n')
    with pytest.raises(UserError, match="line 2"):
        read_history(tmp_path)


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "sub" / "f.txt"
    atomic_write_text(target, "first version, longer")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]


def test_chinese_class_names_stay_text_in_the_plots(tmp_path):
    names = ["好评", "差评"]
    y = np.array([0, 1, 0, 1, 1, 0])
    metrics = compute_metrics("binary", y, np.array([0.2, 0.9, 0.1, 0.7, 0.6, 0.4]), names)
    _, html_path = write_report(tmp_path, "评论", metrics, _history(), "binary", names)
    page = html_path.read_text(encoding="utf-8")
    confusion = page[page.index('aria-label="confusion matrix"') :]
    confusion = confusion[: confusion.index("</figure>")]
    assert "好评" in confusion and "差评" in confusion  # drawn by the browser's fonts, not missing glyphs

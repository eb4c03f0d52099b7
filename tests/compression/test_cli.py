"""`modelworks compress` end to end: the comparison table, a chain of compressions with its
lineage, the other verbs on a compressed run, and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import yaml
from sklearn.datasets import load_digits
from typer.testing import CliRunner

import modelworks
from modelworks.cli import app

runner = CliRunner()

FIELDS = {"size_bytes", "parameters", "nonzero", "latency_ms", "metrics", "run"}


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_prune_then_quantize_records_the_lineage(digits_mlp, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("compress", str(digits_mlp.path), "--method", "prune", "--set", "amount=0.5", "-q")
    assert result.exit_code == 0, result.output
    for row in (
        "size on disk",
        "parameters",
        "non-zero",
        "latency p50, batch 1",
        "latency p99, batch 32",
        "accuracy",
        "f1_macro",
    ):
        assert row in result.stdout
    pruned = next(digits_mlp.path.parent.glob(f"{digits_mlp.name}-prune-*"))
    result = invoke("compress", str(pruned), "--method", "quantize-dynamic", "-q")
    assert result.exit_code == 0, result.output
    quantized = next(pruned.parent.glob(f"{pruned.name}-quantize-dynamic-*"))

    record = json.loads((quantized / "compression.json").read_text())
    assert [step["method"] for step in record["lineage"]] == [None, "prune", "quantize-dynamic"]
    assert record["lineage"][0]["run"] == str(digits_mlp.path.resolve())
    assert FIELDS <= set(record["parent_stats"]) and FIELDS <= set(record["compressed"])
    assert set(record["compressed"]["latency_ms"]) == {"batch_1", "batch_32"}
    assert {"p50_ms", "p99_ms"} <= set(record["compressed"]["latency_ms"]["batch_32"])
    assert record["measured_on"]["iterations"] >= 30
    assert {"size_ratio", "speedup_batch_1", "speedup_batch_32", "accuracy", "f1_macro"} <= set(record["change"])
    config = yaml.safe_load((quantized / "config.yaml").read_text())
    assert config["compression"]["parent"] == str(pruned.resolve())
    # the pruned zeros survive int8 (zero stays zero) and shrink the int8 file too
    assert record["compressed"]["nonzero"] <= 0.6 * record["compressed"]["parameters"]

    assert invoke("evaluate", str(quantized)).exit_code == 0
    assert invoke("report", str(quantized), "--refresh").exit_code == 0
    images = load_digits().images[:5]
    frame = pd.DataFrame({"image": pd.Series(list((images * 255 / 16).round().astype(np.uint8)), dtype=object)})
    predictions = modelworks.load_run(quantized).predict(frame)
    assert list(predictions["prediction"]) == list(modelworks.load_run(pruned).predict(frame)["prediction"])


def test_option_errors_name_the_key_and_the_choices(digits_mlp):
    result = invoke("compress", str(digits_mlp.path), "--method", "prune", "--set", "amout=0.5")
    assert result.exit_code == 2 and "amout: unknown key" in result.stderr
    result = invoke("compress", str(digits_mlp.path), "--method", "prune", "--set", "amount=1.5")
    assert result.exit_code == 2 and "amount" in result.stderr
    result = invoke("compress", str(digits_mlp.path), "--method", "zip")
    assert (
        result.exit_code == 2
        and "unknown compression method 'zip'" in result.stderr
        and "quantize-dynamic" in result.stderr
    )


def test_distill_options_from_a_yaml_file(digits_mlp, tmp_path):
    options = tmp_path / "student.yaml"
    options.write_text("student:\n  type: mlp\n  hidden: [16]\nepochs: 1\n")
    before = set(digits_mlp.path.parent.glob(f"{digits_mlp.name}-distill-*"))  # other tests distill it too
    result = invoke(
        "compress",
        str(digits_mlp.path),
        "--method",
        "distill",
        "--options",
        str(options),
        "--set",
        "temperature=3",
        "-q",
    )
    assert result.exit_code == 0, result.output
    (child,) = set(digits_mlp.path.parent.glob(f"{digits_mlp.name}-distill-*")) - before
    stored = yaml.safe_load((child / "config.yaml").read_text())
    assert stored["model"]["hidden"] == [16] and stored["compression"]["options"]["temperature"] == 3


def test_static_int8_tabular_mlp_predicts_from_the_command_line(make_config, blobs_csv, tmp_path, monkeypatch):
    """Numeric and categorical columns (the embedding stays float) through static int8, then `predict`."""
    monkeypatch.chdir(tmp_path)
    data = {"source": str(blobs_csv), "target": "label", "split": {"column": "split"}, "exclude": ["split"]}
    parent = modelworks.train(make_config(data, {"type": "mlp", "hidden": [16]}, {"epochs": 8, "lr": 0.01}))
    result = invoke("compress", str(parent.path), "--method", "quantize-static", "--set", "calibration_batches=2", "-q")
    assert result.exit_code == 0, result.output
    child = next(parent.path.parent.glob(f"{parent.name}-quantize-static-*"))
    assert json.loads((child / "compression.json").read_text())["notes"]["int8_layers"] == {
        "QuantizedLinearReLU": 1,
        "QuantizedLinear": 1,
    }
    frame = pd.read_csv(blobs_csv).drop(columns=["label"])
    frame.to_csv(tmp_path / "new.csv", index=False)
    result = invoke(
        "predict", str(child), "--input", str(tmp_path / "new.csv"), "--output", str(tmp_path / "preds.csv"), "--proba"
    )
    assert result.exit_code == 0, result.output
    predictions = pd.read_csv(tmp_path / "preds.csv")
    expected = pd.read_csv(blobs_csv)["label"]
    assert (predictions["prediction"] == expected).mean() > 0.9

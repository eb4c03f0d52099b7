"""The command line, end to end, in-process: each verb on a real run, and every user error as
one clear message with exit status 2 and no traceback."""

from __future__ import annotations

from importlib import resources

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from modelworks.cli import app
from modelworks.config.load import validate

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_every_starter_config_is_valid():
    names = [
        p.name.removesuffix(".yaml")
        for p in resources.files("modelworks.config.templates").iterdir()
        if p.name.endswith(".yaml")
    ]
    assert {"image-classification", "tabular-classification", "text-classification", "regression"} <= set(names)
    for name in names:
        result = invoke("init", name)
        assert result.exit_code == 0
        validate(yaml.safe_load(result.stdout), name)


def test_unknown_starter_names_the_choices():
    result = invoke("init", "speech")
    assert result.exit_code == 2
    assert "no starter config 'speech'" in result.stderr and "tabular-classification" in result.stderr


def test_train_evaluate_predict_report_compare(make_config, blobs_csv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = make_config(
        {"source": str(blobs_csv), "target": "label", "split": {"column": "split"}}, train={"epochs": 10}
    )
    result = invoke("train", str(path), "--set", "train.lr=0.01", "--set", "model.hidden=[8]", "-q")
    assert result.exit_code == 0, result.output
    run_dir = next((tmp_path / "runs").iterdir())
    stored = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert stored["train"]["lr"] == 0.01 and stored["model"]["hidden"] == [8]

    result = invoke("evaluate", str(run_dir))
    assert result.exit_code == 0 and "accuracy" in result.stdout

    frame = pd.read_csv(blobs_csv).drop(columns=["label"])
    frame.to_csv(tmp_path / "new.csv", index=False)
    result = invoke(
        "predict",
        str(run_dir),
        "--input",
        str(tmp_path / "new.csv"),
        "--output",
        str(tmp_path / "preds.csv"),
        "--proba",
    )
    assert result.exit_code == 0, result.output
    preds = pd.read_csv(tmp_path / "preds.csv")
    assert len(preds) == len(frame)
    assert set(preds["prediction"]) <= {"cat", "dog", "fox"}
    assert preds[["proba_cat", "proba_dog", "proba_fox"]].sum(axis=1).round(5).eq(1).all()

    result = invoke("report", str(run_dir), "--refresh")
    assert result.exit_code == 0 and "report.html" in result.stdout

    second = make_config(
        {"source": str(blobs_csv), "target": "label", "split": {"column": "split"}}, train={"epochs": 2}
    )
    assert invoke("train", str(second), "-q").exit_code == 0
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    result = invoke("compare", *[str(tmp_path / "runs" / r) for r in runs])
    assert result.exit_code == 0 and all(r[:20] in result.stdout for r in runs)

    result = invoke("evaluate", str(run_dir), "--cv", "3")
    assert result.exit_code == 0, result.output
    assert (run_dir / "cv.json").exists()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"model": {"type": "mlp", "hiden": [3]}}, "model.hiden: unknown key (did you mean 'hidden'?)"),
        ({"train": {"lr": -1}}, "train.lr: Input should be greater than 0"),
        ({"model": {"type": "resnet"}}, "model"),
        ({"data": {"source": "missing.csv"}}, "missing.csv"),
        ({"data": {"source": "builtin:mnist"}}, "unknown builtin data set 'mnist'"),
        ({"data": {"source": "builtin:iris", "target": "species"}}, "species"),
        ({"train": {"optimizer": {"type": "sgd", "nesterov": True}}}, "nesterov"),
        ({"train": {"device": "cuda"}}, "cuda"),
    ],
)
def test_user_errors_are_one_clear_message(make_config, tmp_path, change, message):
    base = {"data": {"source": "builtin:iris"}, "model": {"type": "mlp"}, "train": {"epochs": 1}}
    for key, value in change.items():
        base[key] = value
    path = make_config(base["data"], base["model"], base["train"])
    result = runner.invoke(app, ["train", str(path), "-q"])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").glob("*/model.safetensors"))


def test_bad_override_and_bad_yaml(tmp_path, make_config):
    path = make_config({"source": "builtin:iris"})
    result = runner.invoke(app, ["train", str(path), "--set", "train.lr"])
    assert result.exit_code == 2 and "expected KEY.PATH=VALUE" in result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  source: [unclosed\n")
    result = runner.invoke(app, ["train", str(bad)])
    assert result.exit_code == 2 and "bad.yaml line" in result.stderr
    result = runner.invoke(app, ["evaluate", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "no run at" in result.stderr


def test_summaries_are_short_and_json_is_one_document(make_config, blobs_csv, tmp_path, monkeypatch):
    import json
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    path = make_config({"source": str(blobs_csv), "target": "label", "split": {"column": "split"}}, train={"epochs": 3})
    result = invoke("train", str(path), "-q")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    run_dir = next((tmp_path / "runs").iterdir())
    assert len(lines) == 4 and lines[0].startswith(f"run {run_dir}") and "best epoch" in lines[0]
    assert lines[1].startswith("test split: accuracy ") and "f1_macro" in lines[1] and "log_loss" in lines[1]
    assert lines[2].startswith("baselines: dummy accuracy ") and "best baseline" in lines[2]  # issue 11
    assert "precision_weighted" not in result.stdout and lines[3] == f"report: {run_dir / 'report.html'}"

    result = invoke("train", str(path), "--json")  # no progress bar: stdout is the document alone
    assert result.exit_code == 0, result.output
    trained = json.loads(result.stdout)
    assert trained["evaluated_on"] == "test" and trained["main_metric"]["name"] == "accuracy"
    assert 0 <= trained["summary"]["accuracy"] <= 1 and (Path(trained["run"]) / "model.safetensors").exists()

    result = invoke("evaluate", str(run_dir), "--split", "validation")
    assert (
        result.exit_code == 0
        and result.stdout.startswith("validation: accuracy ")
        and len(result.stdout.splitlines()) == 1
    )
    evaluated = json.loads(invoke("evaluate", str(run_dir), "--json").stdout)
    assert evaluated["evaluated_on"] == "test" and len(evaluated["metrics"]["confusion_matrix"]) == 3
    folds = json.loads(invoke("evaluate", str(run_dir), "--cv", "2", "--json").stdout)
    assert len(folds["per_fold"]) == 2 and "accuracy" in folds["mean"]

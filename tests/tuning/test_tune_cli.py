"""`modelworks tune` end to end: the table of best trials and the paths, and exit status 2 on a bad space."""

from __future__ import annotations

from typer.testing import CliRunner

from modelworks.cli import app

runner = CliRunner()


def test_tune_prints_the_best_trials_and_the_paths(iris_experiment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = iris_experiment(
        {"space": {"train.lr": {"loguniform": [1.0e-3, 1.0e-1]}}, "pruner": "none"}, train={"epochs": 2}
    )
    result = runner.invoke(
        app, ["tune", str(path), "--trials", "1", "--set", "model.hidden=[8]"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "best trials by val_accuracy" in result.stdout and "train.lr" in result.stdout
    assert "1 trial: 1 complete" in result.stdout
    study = next((tmp_path / "runs").glob("iris-tune-*"))
    assert f"study: {study}" in result.stdout and "best.yaml" in result.stdout and "tune.html" in result.stdout
    assert "trial 0: complete, val_accuracy" in result.stderr  # one line per finished trial


def test_tune_exits_2_on_a_bad_space(iris_experiment, tmp_path):
    path = iris_experiment({"space": {"train.lr": {"uniform": [0.1, 0.01]}}})
    result = runner.invoke(app, ["tune", str(path)], catch_exceptions=False)
    assert result.exit_code == 2
    assert "lower bound 0.1 is greater than upper bound 0.01" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()

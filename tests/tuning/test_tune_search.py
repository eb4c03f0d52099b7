"""Searches for real on iris: TPE, pruning, parallel workers, resuming, cross-validation, timeout."""

from __future__ import annotations

import json

import optuna
import pandas as pd
import pytest
import yaml
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

import modelworks
from modelworks.config.load import load_config
from modelworks.store.run import WEIGHTS


def trials_of(result) -> pd.DataFrame:
    return pd.read_csv(result.study_dir / "trials.csv")


def test_tpe_search_finds_a_good_config_and_writes_every_output(iris_experiment):
    space = {"train.lr": {"loguniform": [1.0e-4, 1.0e-1]}, "model.hidden": {"choice": [[8], [32]]}}
    result = modelworks.tune(iris_experiment({"space": space, "trials": 6, "pruner": "none"}))

    frame = trials_of(result)
    assert len(frame) == 6 and set(frame["state"]) == {"COMPLETE"}
    assert list(frame.columns[:5]) == ["number", "state", "val_accuracy", "epochs", "duration_s"]
    assert set(frame.columns[5:]) == {"train.lr", "model.hidden", "run"}
    assert result.metric == "val_accuracy" and result.direction == "max"  # resolved from the task
    assert result.best_value == frame["val_accuracy"].max() >= frame["val_accuracy"].min()
    best = frame.loc[frame["val_accuracy"].idxmax()]
    assert result.best_params["train.lr"] == pytest.approx(best["train.lr"])
    assert result.best_params["model.hidden"] in ([8], [32])  # decoded back to a list

    # best.yaml is an experiment `modelworks train` accepts, with the best params in it
    config = load_config(result.best_config)
    assert config.train.lr == pytest.approx(result.best_params["train.lr"])
    assert config.model.hidden == result.best_params["model.hidden"] and config.tune is None
    # the best run keeps its weights, the others only their records
    assert (result.best_run / WEIGHTS).exists() and (result.best_run / "report.json").exists()
    others = [result.study_dir / r for r in frame["run"] if result.study_dir / r != result.best_run]
    assert len(others) == 5 and not any((o / WEIGHTS).exists() for o in others)
    assert all((o / "metrics.jsonl").exists() for o in others)

    report = json.loads((result.study_dir / "tune.json").read_text())
    assert report["best"]["trial"] == int(best["number"]) and len(report["trials"]) == 6
    assert set(report["importance"]) == {"train.lr", "model.hidden"}
    html = (result.study_dir / "tune.html").read_text()
    assert html.count("<svg") == 3 and "Optimization history" in html and "Parameter importance" in html
    stored = yaml.safe_load((result.study_dir / "experiment.yaml").read_text())
    assert stored["tune"]["metric"] == "val_accuracy" and stored["tune"]["direction"] == "max"


def test_median_pruner_stops_clearly_bad_trials(iris_experiment):
    # lr from 1e-6 (learns nothing in 6 epochs) to 1e-1 (learns iris in 2): the bad ones are pruned
    tune = {
        "space": {"train.lr": {"loguniform": [1.0e-6, 1.0e-1]}},
        "trials": 8,
        "sampler": "random",
        "seed": 3,
        "pruner": {"type": "median", "startup_trials": 2, "warmup_epochs": 1},
    }
    result = modelworks.tune(iris_experiment(tune, train={"epochs": 6}))

    frame = trials_of(result)
    pruned = frame[frame["state"] == "PRUNED"]
    assert len(frame) == 8 and len(pruned) >= 1
    assert (pruned["epochs"] < 6).all() and pruned["val_accuracy"].isna().all()
    assert pruned["train.lr"].max() < result.best_params["train.lr"]
    assert not any((result.study_dir / r / WEIGHTS).exists() for r in pruned["run"])
    curves = json.loads((result.study_dir / "tune.json").read_text())["counts"]
    assert curves["PRUNED"] == len(pruned)


@pytest.mark.slow  # worker processes; parallel trials are also covered by test_tune_callbacks
def test_parallel_workers_record_every_trial(iris_experiment):
    tune = {"space": {"train.lr": {"loguniform": [1.0e-3, 1.0e-1]}}, "sampler": "random", "pruner": "none"}
    result = modelworks.tune(iris_experiment(tune, train={"epochs": 1}), trials=3, parallel=2)

    frame = trials_of(result)
    assert sorted(frame["number"]) == [0, 1, 2] and set(frame["state"]) == {"COMPLETE"}
    assert frame["train.lr"].nunique() == 3  # the two workers draw different values
    assert all((result.study_dir / r / "report.json").exists() for r in frame["run"])
    assert json.loads((result.study_dir / "tune.json").read_text())["settings"]["parallel"] == 2


@pytest.mark.slow  # a second search; resuming is also covered by the tune job's crash test
def test_an_interrupted_search_resumes_to_the_total(iris_experiment, tmp_path):
    tune = {"space": {"train.lr": {"loguniform": [1.0e-3, 1.0e-1]}}, "pruner": "none"}
    path = iris_experiment(tune, train={"epochs": 1})
    folder = tmp_path / "study"
    first = modelworks.tune(path, trials=3, study=folder)  # a new study in that folder
    assert first.study_dir == folder and len(first.trials) == 3

    second = modelworks.tune(resume=folder, trials=5)  # the stored experiment, 2 more trials
    frame = trials_of(second)
    assert len(frame) == 5 and list(frame["number"]) == [0, 1, 2, 3, 4]
    columns = ["number", "state", "val_accuracy", "train.lr", "run"]
    pd.testing.assert_frame_equal(frame.head(3)[columns], first.trials[columns], check_dtype=False)
    assert not set(frame["train.lr"][3:]) & set(frame["train.lr"][:3])  # new draws, not replays

    # a killed session leaves its trial RUNNING: resuming marks it FAIL, and it does not count
    storage = JournalStorage(JournalFileBackend(str(folder / "study.log")))
    optuna.load_study(study_name="modelworks", storage=storage).ask()
    third = modelworks.tune(path, resume=folder, trials=5)  # the experiment may come along if unchanged
    assert list(third.trials["state"]) == ["COMPLETE"] * 5 + ["FAIL"]
    with pytest.raises(modelworks.UserError, match="searched a different experiment.*train.epochs"):
        modelworks.tune(path, resume=folder, overrides=["train.epochs=2"])


def test_cross_validated_trials_and_a_best_run(iris_experiment):
    tune = {"space": {"train.lr": {"choice": [1.0e-2, 5.0e-2]}}, "sampler": "grid", "cv_folds": 2, "trials": 2}
    result = modelworks.tune(iris_experiment(tune, train={"epochs": 2}))

    frame = trials_of(result)
    assert len(frame) == 2 and set(frame["state"]) == {"COMPLETE"} and set(frame["train.lr"]) == {1.0e-2, 5.0e-2}
    assert all((result.study_dir / r / "cv.json").exists() for r in frame["run"])
    assert result.best_run is not None and (result.best_run / WEIGHTS).exists()
    assert any("pruning is disabled" in n for n in result.notes)


def test_timeout_stops_starting_trials(iris_experiment):
    tune = {"space": {"train.lr": {"loguniform": [1.0e-3, 1.0e-1]}}, "pruner": "none", "trials": 50, "timeout_s": 0.5}
    # Each trial must outlast a good part of the timeout whatever the machine's speed: 100 epochs of iris.
    result = modelworks.tune(iris_experiment(tune, train={"epochs": 100}))
    assert 1 <= len(trials_of(result)) <= 2

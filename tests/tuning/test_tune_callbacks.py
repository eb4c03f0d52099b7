"""`tune(callbacks=)`: every finished trial once, as a typed record, in this process; a resumed
study's earlier trials first; with parallel workers too."""

from __future__ import annotations

import pandas as pd

import modelworks
from modelworks.api import TrialRecord

SPACE = {"train.lr": {"loguniform": [1.0e-3, 1.0e-1]}}


def test_each_trial_reaches_the_callbacks_once_a_resumed_study_its_earlier_ones_first(iris_experiment, tmp_path):
    path = iris_experiment({"space": SPACE, "pruner": "none", "sampler": "random"}, train={"epochs": 2})
    folder = tmp_path / "study"
    seen: list[TrialRecord] = []
    first = modelworks.tune(path, trials=2, study=folder, callbacks=[seen.append])
    frame = pd.read_csv(first.study_dir / "trials.csv")
    assert [t.number for t in seen] == [0, 1] and not any(t.resumed for t in seen)
    for t in seen:
        row = frame[frame["number"] == t.number].iloc[0]
        assert t.state == "COMPLETE" and t.counted and t.metric == "val_accuracy" and t.epochs == 2
        assert t.value == row["val_accuracy"] and t.params["train.lr"] == row["train.lr"]
        assert t.run == first.study_dir / row["run"] and (t.run / "report.json").exists()

    again: list[TrialRecord] = []
    modelworks.tune(resume=folder, trials=3, callbacks=[again.append])
    assert [(t.number, t.resumed) for t in again] == [(0, True), (1, True), (2, False)]
    assert again[0].value == seen[0].value


def test_parallel_workers_report_every_trial_once(iris_experiment):
    seen: list[TrialRecord] = []
    path = iris_experiment({"space": SPACE, "pruner": "none", "sampler": "random"}, train={"epochs": 1})
    result = modelworks.tune(path, trials=3, parallel=2, callbacks=[seen.append])
    assert sorted(t.number for t in seen) == [0, 1, 2] and {t.state for t in seen} == {"COMPLETE"}
    assert result.best_value == max(t.value for t in seen)


def test_an_error_in_a_callback_stops_the_search(iris_experiment):
    class Stop(Exception):
        pass

    def stop(trial: TrialRecord) -> None:
        raise Stop(trial.number)

    path = iris_experiment({"space": SPACE, "pruner": "none", "trials": 5}, train={"epochs": 1})
    try:
        modelworks.tune(path, callbacks=[stop])
    except Stop as e:
        assert e.args == (0,)
    else:
        raise AssertionError("the callback's error did not propagate")

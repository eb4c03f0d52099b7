"""The typed artifacts of a run folder: each round-trips, is written as strict JSON (NaN becomes
null), and a missing or damaged file is a `UserError` that names it and keeps its cause."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pydantic import ValidationError

from modelworks.errors import UserError
from modelworks.store.cv import CrossValidation, read_cv, write_cv
from modelworks.store.environment import Environment, read_environment, write_environment
from modelworks.store.files import CV_JSON, ENVIRONMENT, METRICS, PREPROCESS, REPORT_JSON
from modelworks.store.jsonfile import dumps, read_json, write_json
from modelworks.store.metrics import MetricsLog, TrainingRecord
from modelworks.store.preprocess import PreprocessRecord, read_preprocess, write_preprocess
from modelworks.store.report import MainMetric, Report, ReportExtra, read_report, write_report_json


def _strict(path) -> dict:
    """The file parsed by a parser that refuses NaN and Infinity, as other languages' parsers do."""

    def refuse(token: str):
        raise AssertionError(f"{path} holds {token}: not strict JSON")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def _report(value: float = 0.75) -> Report:
    return Report(
        title="iris — mlp on builtin:iris", task="multiclass", class_names=["a", "b", "c"],
        main_metric=MainMetric(name="accuracy", direction="max", value=value),
        summary={"accuracy": value, "f1_macro": 0.7}, metrics={"accuracy": value, "roc_auc": None},
        extra=ReportExtra(run="iris-1", model="mlp", parameters=1234, evaluated_on="test", best_epoch=3, test_rows=30),
    )  # fmt: skip


def test_report_round_trips_and_reads_as_attributes_or_keys(tmp_path):
    path = write_report_json(tmp_path, _report())
    assert path == tmp_path / REPORT_JSON
    again = read_report(tmp_path)
    assert again == _report()
    assert again.main_metric.value == 0.75 and again.extra.best_epoch == 3 and again.extra.test_rows == 30
    # mapping access, for callers written against the plain dict
    assert again["summary"]["accuracy"] == 0.75 and again["extra"]["evaluated_on"] == "test"
    assert again.get("nothing", "default") == "default" and "stopped_early" not in again.extra
    assert _strict(path)["extra"]["parameters"] == 1234


def test_an_undefined_metric_is_written_as_null(tmp_path):
    write_report_json(tmp_path, _report(float("nan")))
    raw = _strict(tmp_path / REPORT_JSON)
    assert raw["main_metric"]["value"] is None and raw["summary"]["accuracy"] is None
    assert read_report(tmp_path).main_metric.value is None
    write_json(tmp_path / "x.json", {"inf": float("inf"), "nested": [float("-inf"), 1.5]})
    assert _strict(tmp_path / "x.json") == {"inf": None, "nested": [None, 1.5]}
    assert dumps([float("nan")], None) == "[null]"


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"title": "t", "task": "multiclass"', "not valid JSON"),
        ('{"title": "t", "task": "multiclass"}', "main_metric"),
        ('{"title": "t", "task": "ranking", "main_metric": {"name": "a", "direction": "max"}}', "task"),
    ],
)
def test_a_damaged_report_is_a_user_error_naming_the_file(tmp_path, text, message):
    (tmp_path / REPORT_JSON).write_text(text)
    with pytest.raises(UserError, match=message) as caught:
        read_report(tmp_path)
    assert str(tmp_path / REPORT_JSON) in str(caught.value)
    assert isinstance(caught.value.__cause__, (json.JSONDecodeError, ValidationError))  # the cause is kept


def test_a_missing_file_is_a_user_error_with_its_cause(tmp_path):
    with pytest.raises(UserError, match=ENVIRONMENT) as caught:
        read_environment(tmp_path)
    assert isinstance(caught.value.__cause__, FileNotFoundError)
    with pytest.raises(UserError, match="not valid JSON"):
        (tmp_path / "bad.json").write_bytes(b"\xff\xfe{")
        read_json(tmp_path / "bad.json")


def test_environment_round_trips(tmp_path):
    env = Environment.capture("cpu", world_size=2)
    assert env.world_size == 2 and env.device == "cpu" and "torch" in env.packages
    write_environment(tmp_path, env)
    assert read_environment(tmp_path) == env
    assert set(_strict(tmp_path / ENVIRONMENT)) >= {"created", "python", "packages", "git_commit", "world_size"}


def test_preprocess_envelope_keeps_the_schema_key(tmp_path):
    record = PreprocessRecord(state={"numeric": {"a": {"mean": 1.0}}}, input_schema={"task": "binary"})
    write_preprocess(tmp_path, record)
    assert set(_strict(tmp_path / PREPROCESS)) == {"state", "schema"}  # the file format is unchanged
    assert read_preprocess(tmp_path) == record
    (tmp_path / PREPROCESS).write_text('{"state": {}}')
    with pytest.raises(UserError, match="schema"):
        read_preprocess(tmp_path)


def test_cross_validation_round_trips_with_undefined_spread(tmp_path):
    summary = CrossValidation(folds=2, per_fold=[{"accuracy": 1.0}, {"accuracy": 0.5}], mean={"accuracy": 0.75},
                              std={"accuracy": float("nan")}, note="n")  # fmt: skip
    assert write_cv(tmp_path, summary) == tmp_path / CV_JSON
    assert _strict(tmp_path / CV_JSON)["std"] == {"accuracy": None}
    again = read_cv(tmp_path)
    assert again.mean == {"accuracy": 0.75} and again["per_fold"][1]["accuracy"] == 0.5


def test_metrics_log_is_strict_and_typed(tmp_path):
    log = MetricsLog(tmp_path / METRICS)
    log.append({"kind": "step", "step": 1, "epoch": 0, "loss": float("nan"), "lr": 0.1})
    log.append({"kind": "epoch", "step": 2, "epoch": 1, "train_loss": 0.5, "val_accuracy": 0.9})
    log.append(TrainingRecord(kind="epoch", step=4, epoch=2, train_loss=0.25, val_accuracy=0.95))
    lines = (tmp_path / METRICS).read_text().splitlines()
    assert all("NaN" not in line for line in lines)
    assert json.loads(lines[2]) == {"kind": "epoch", "step": 4, "epoch": 2, "train_loss": 0.25, "val_accuracy": 0.95}
    records = log.read()
    assert [r.kind for r in records] == ["step", "epoch", "epoch"] and records[0].loss is None
    assert [r.metric("val_accuracy") for r in log.epochs()] == [0.9, 0.95]
    assert records[1]["train_loss"] == 0.5 and "val_loss" not in records[1] and "val_accuracy" in records[1]
    assert records[1].keys() == ["kind", "step", "epoch", "train_loss", "val_accuracy"]
    assert [k for k in records[1]] == records[1].keys() and dict(records[1])["val_accuracy"] == 0.9
    log.truncate_after(2)
    assert [r.step for r in log.read()] == [1, 2]


def test_a_record_that_is_not_a_training_record_names_its_line(tmp_path):
    (tmp_path / METRICS).write_text('{"kind": "step", "step": 1}\n{"kind": "batch"}\n{"kind": "step", "step": 3}\n')
    with pytest.raises(UserError, match="line 2") as caught:
        MetricsLog(tmp_path / METRICS).read()
    assert isinstance(caught.value.__cause__, ValidationError)


def test_reading_artifacts_needs_no_torch():
    modules = ["report", "environment", "metrics", "preprocess", "cv", "jsonfile", "files"]
    code = "import sys\n" + "".join(f"import modelworks.store.{m}\n" for m in modules) + "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"

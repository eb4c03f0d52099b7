"""`StoredRun`: a trained run folder read through its typed artifacts, without loading the model."""

from __future__ import annotations

import pytest

import modelworks
from modelworks.errors import UserError
from modelworks.store.files import ENVIRONMENT, REPORT_JSON
from modelworks.store.run import StoredRun, find_run


@pytest.fixture
def trained(blobs_csv, tmp_path):
    config = {
        "data": {"source": blobs_csv.name, "target": "label", "split": {"column": "split"}},
        "model": {"type": "mlp", "hidden": [8]},
        "train": {"epochs": 2, "batch_size": 32, "progress": False},
    }
    return modelworks.train(config, base_dir=tmp_path)


def test_a_stored_run_reads_every_artifact(trained, tmp_path):
    stored = StoredRun(find_run(trained.name, tmp_path / "runs"))
    assert stored.path == trained.path and stored.name == trained.name and stored.has_weights
    assert stored.config == trained.config and stored.config.data.task == "multiclass"
    assert stored.preprocess.input_schema == trained.schema.to_json()
    report = stored.report
    assert report.task == "multiclass" and report.main_metric.name == "accuracy"
    assert report.extra.run == trained.name and report.extra.model == "mlp" and report.extra.best_epoch == 2
    assert report.extra.parameters > 0 and report.extra.train_rows == 128
    assert [r.epoch for r in stored.history] == [1, 2] and all(r.train_loss is not None for r in stored.history)
    assert stored.environment.world_size == 1 and stored.environment.device == "cpu"
    assert stored.cv is None
    assert find_run(trained.name, base_dir=tmp_path) == trained.path  # runs/ under the given base folder


def test_refresh_keeps_what_only_training_knows(trained):
    before = trained.report
    trained.refresh_report()
    after = trained.report
    assert after.extra.best_epoch == before.extra.best_epoch and after.extra.stopped_early == before.extra.stopped_early
    assert after.summary == pytest.approx(before.summary)


def test_a_damaged_artifact_names_its_file(trained):
    (trained.path / ENVIRONMENT).write_text('{"python": 3')
    with pytest.raises(UserError, match=ENVIRONMENT):
        _ = StoredRun(trained.path).environment
    (trained.path / REPORT_JSON).write_text('{"title": "t", "task": "multiclass", "main_metric": {"name": "accuracy"}}')
    with pytest.raises(UserError, match=r"report\.json is damaged: main_metric\.direction"):
        _ = StoredRun(trained.path).report

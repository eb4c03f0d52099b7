"""Tokenization with the Hugging Face `tokenizers` library.

"wordpiece" and "vocab" tokenizers are trained on the training texts with BERT's normalizer and
pre-tokenizer, and accents are kept (stripping them would decompose Japanese kana and Korean
Hangul). CJK text has no spaces between words, so `cjk_ngrams` first writes every run of CJK
characters as its characters, each followed by the character n-grams that start at it
("足球比赛" -> "足 足球 球 球比 比 比赛 赛" for n=2): a token vocabulary of characters and the
two-character words most Chinese words are. "pretrained" loads the model folder's own
tokenizer.json; `unknown_rate` measures how much of a text it cannot represent. A fitted
tokenizer is saved as its JSON string, truncation and padding settings included, and reloaded
with `Tokenizer.from_str`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from modelworks.data.feature_types import TextFeature
from modelworks.errors import UserError

if TYPE_CHECKING:  # tokenizers is imported by the runs that tokenize text, on first use
    from tokenizers import Tokenizer

PAD, UNK = "[PAD]", "[UNK]"
SPECIAL_TOKENS = [PAD, UNK, "[CLS]", "[SEP]"]  # [PAD] gets id 0
PAD_CANDIDATES = (PAD, "<pad>", "<PAD>")
UNK_CANDIDATES = (UNK, "<unk>", "<UNK>")
CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")


class UnknownTokenWarning(UserWarning):
    """A pretrained tokenizer maps much of the training text to its unknown token."""


def cjk_ngrams(texts: Sequence[str], n: int) -> list[str]:
    """`texts` with each run of CJK characters spelled as its characters and their n-grams (see above)."""
    if n <= 1:
        return list(texts)

    def spell(match: re.Match) -> str:
        run = match.group()
        grams = [run[i : i + k] for i in range(len(run)) for k in range(1, n + 1) if i + k <= len(run)]
        return " " + " ".join(grams) + " "

    return [CJK_RUN.sub(spell, text) for text in texts]


def build_tokenizer(cfg: TextFeature, texts: Sequence[str]) -> Tokenizer:
    """A tokenizer for `cfg`, trained on `texts` unless pretrained; encodes to cfg.max_length ids."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    if cfg.tokenizer == "pretrained":
        tokenizer = _pretrained(cfg)
    else:
        wordpiece = cfg.tokenizer == "wordpiece"
        tokenizer = Tokenizer(models.WordPiece(unk_token=UNK) if wordpiece else models.WordLevel(unk_token=UNK))
        trainer = (trainers.WordPieceTrainer if wordpiece else trainers.WordLevelTrainer)(
            vocab_size=cfg.vocab_size,
            min_frequency=cfg.min_frequency,
            special_tokens=SPECIAL_TOKENS,
            show_progress=False,
        )
        tokenizer.normalizer = normalizers.BertNormalizer(
            lowercase=cfg.lowercase, handle_chinese_chars=cfg.cjk_ngrams == 1, strip_accents=False
        )
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.train_from_iterator(cjk_ngrams(texts, cfg.cjk_ngrams), trainer)
    pad_id = pad_token_id(tokenizer)  # before enable_padding replaces the file's own setting
    tokenizer.enable_truncation(max_length=cfg.max_length)
    tokenizer.enable_padding(length=cfg.max_length, pad_id=pad_id, pad_token=tokenizer.id_to_token(pad_id) or PAD)
    return tokenizer


def pad_token_id(tokenizer: Tokenizer) -> int:
    """The padding id: the tokenizer's own padding setting, else a [PAD]-like token, else 0."""
    if tokenizer.padding is not None:
        return int(tokenizer.padding["pad_id"])
    ids = [tokenizer.token_to_id(token) for token in PAD_CANDIDATES]
    return next((i for i in ids if i is not None), 0)


def encode(tokenizer: Tokenizer, texts: Sequence[str], ngrams: int = 1) -> np.ndarray:
    """Token ids (N, max_length) int64, truncated and right-padded by the tokenizer's settings;
    `ngrams` as the tokenizer was trained with (`cjk_ngrams`)."""
    encodings = tokenizer.encode_batch(cjk_ngrams(texts, ngrams))
    return np.array([e.ids for e in encodings], dtype=np.int64).reshape(len(encodings), -1)


def unknown_rate(tokenizer: Tokenizer, texts: Sequence[str], sample: int = 2000) -> float | None:
    """The share of the tokens of (up to `sample` of) `texts` that `tokenizer` maps to its unknown
    token, special tokens left out; None when it has no unknown token (byte-level BPE)."""
    unk = next((i for i in (tokenizer.token_to_id(t) for t in UNK_CANDIDATES) if i is not None), None)
    if unk is None:
        return None
    counted = unknown = 0
    for encoding in tokenizer.encode_batch(list(texts[:sample]), add_special_tokens=False):
        ids = [i for i, m in zip(encoding.ids, encoding.attention_mask, strict=False) if m]
        counted += len(ids)
        unknown += sum(i == unk for i in ids)
    return unknown / counted if counted else 0.0


def check_unknown_rate(cfg: TextFeature, rate: float | None, texts: Sequence[str]) -> None:
    """Warn (or refuse, ``on_unknown: error``) when a pretrained tokenizer cannot represent the text."""
    if rate is None or rate <= cfg.max_unknown_rate:
        return
    chinese = sum(len(m) for m in CJK_RUN.findall("".join(texts[:500]))) > 0
    suggestion = (
        "a model whose tokenizer covers Chinese (e.g. a local copy of bert-base-chinese, "
        "bert-base-multilingual-cased or xlm-roberta-base)"
        if chinese
        else "a multilingual model (e.g. a local copy of bert-base-multilingual-cased or xlm-roberta-base)"
    )
    message = (
        f"text feature {cfg.name!r}: the pretrained tokenizer maps {rate:.0%} of the training split's tokens to its "
        f"unknown token (max_unknown_rate {cfg.max_unknown_rate:.0%}), so the model cannot read much of the text; "
        f"use {suggestion}, or a tokenizer trained on your data (model type fasttext, rnn or transformer)"
    )
    if cfg.on_unknown == "error":
        raise UserError(message + "; refused by on_unknown: error (set on_unknown: warn to train anyway)")
    warnings.warn(message, UnknownTokenWarning, stacklevel=3)


def _pretrained(cfg: TextFeature) -> Tokenizer:
    from tokenizers import Tokenizer

    if cfg.tokenizer_path is None:
        raise UserError(
            f"text feature {cfg.name!r}: tokenizer 'pretrained' needs tokenizer_path (a folder with tokenizer.json)"
        )
    path = Path(cfg.tokenizer_path).expanduser() / "tokenizer.json"
    if not path.is_file():
        raise UserError(f"text feature {cfg.name!r}: {path} not found; tokenizer_path must hold tokenizer.json")
    return Tokenizer.from_file(str(path))

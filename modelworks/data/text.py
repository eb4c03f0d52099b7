"""Tokenization with the Hugging Face `tokenizers` library.

"wordpiece" and "vocab" tokenizers are trained on the training texts with BERT's normalizer and
pre-tokenizer: CJK characters become single tokens, so Chinese needs no spaces, and accents are
kept (stripping them would decompose Japanese kana and Korean Hangul). "pretrained" loads the
model folder's own tokenizer.json. A fitted tokenizer is saved as its JSON string, truncation and
padding settings included, and reloaded with `Tokenizer.from_str`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from modelworks.data.feature_types import TextFeature
from modelworks.errors import UserError

PAD, UNK = "[PAD]", "[UNK]"
SPECIAL_TOKENS = [PAD, UNK, "[CLS]", "[SEP]"]  # [PAD] gets id 0
PAD_CANDIDATES = (PAD, "<pad>", "<PAD>")


def build_tokenizer(cfg: TextFeature, texts: Sequence[str]) -> Tokenizer:
    """A tokenizer for `cfg`, trained on `texts` unless pretrained; encodes to cfg.max_length ids."""
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
            lowercase=cfg.lowercase, handle_chinese_chars=True, strip_accents=False
        )
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.train_from_iterator(texts, trainer)
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


def encode(tokenizer: Tokenizer, texts: Sequence[str]) -> np.ndarray:
    """Token ids (N, max_length) int64, truncated and right-padded by the tokenizer's settings."""
    encodings = tokenizer.encode_batch(list(texts))
    return np.array([e.ids for e in encodings], dtype=np.int64).reshape(len(encodings), -1)


def _pretrained(cfg: TextFeature) -> Tokenizer:
    if cfg.tokenizer_path is None:
        raise UserError(
            f"text feature {cfg.name!r}: tokenizer 'pretrained' needs tokenizer_path (a folder with tokenizer.json)"
        )
    path = Path(cfg.tokenizer_path).expanduser() / "tokenizer.json"
    if not path.is_file():
        raise UserError(f"text feature {cfg.name!r}: {path} not found; tokenizer_path must hold tokenizer.json")
    return Tokenizer.from_file(str(path))

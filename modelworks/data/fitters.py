"""One fitter per feature type: fit state on the training column, transform any column.

A fitter follows scikit-learn: ``__init__`` stores the feature's config, `fit` learns the state
(plain JSON, saved in preprocess.json) into ``state_``, `from_state` rebuilds a fitted one, and
`transform` turns a column into the feature's model input: (N,) values for the stacked kinds
(numeric, categorical), one (N, ...) tensor for the others (text, image). `spec` is what the
model-facing `InputSchema` records about the input. The feature types declare their fitters in
`modelworks.data.feature_types`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from modelworks.data.feature_types import CategoricalFeature, ImageFeature, NumericFeature, TextFeature
from modelworks.data.image import augment_images, image_shape, load_images, load_pixels, normalize_pixels
from modelworks.data.schema import TextSpec
from modelworks.data.text import build_tokenizer, check_unknown_rate, encode, pad_token_id, unknown_rate
from modelworks.errors import UserError

if TYPE_CHECKING:  # imported on first use, by the runs that tokenize text
    from tokenizers import Tokenizer


class Fitter:
    """The base of every fitter; see the module docstring."""

    state_: dict[str, Any]

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    def fit(self, column: pd.Series) -> Fitter:
        raise NotImplementedError

    @classmethod
    def from_state(cls, cfg: Any, state: dict[str, Any]) -> Fitter:
        self = cls(cfg)
        self.state_ = state
        return self

    def transform(self, column: pd.Series) -> np.ndarray | torch.Tensor:
        raise NotImplementedError

    def spec(self) -> Any:
        """What `InputSchema` records for this input (None: the name alone)."""
        return None

    def augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Random training-time augmentation of a transformed batch; none by default."""
        return x

    def store(self, column: pd.Series) -> np.ndarray | torch.Tensor:
        """The column as training holds it in memory; `decode` turns a batch of it into `transform`'s output."""
        return self.transform(column)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """A batch of `store`'s output as the model takes it; the same tensor by default."""
        return x


# ---------------------------------------------------------------------------------- helpers


def category_keys(column: pd.Series) -> pd.Series:
    """Values as category strings; 3.0 and 3 are the same key so int columns with gaps still match."""
    return column.astype(object).map(
        lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v), na_action="ignore"
    )


def as_numbers(name: str, column: pd.Series) -> pd.Series:
    """`column` as float64; a value that is not a number is a UserError naming its row."""
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "iuf":
        return column.astype(np.float64)  # NumPy numbers already: nothing to parse or check
    values = pd.to_numeric(column, errors="coerce")
    bad = values.isna() & column.notna()
    if bad.any():
        row = bad.idxmax()
        raise UserError(
            f"column {name!r} must hold numbers but row {row} holds {column[row]!r}; "
            "fix the value or declare the column categorical or text in data.features"
        )
    return values.astype(np.float64)


# -------------------------------------------------------------------------------- numeric


class NumericFitter(Fitter):
    """Fill value and scaling (center, scale) from the training values."""

    cfg: NumericFeature

    def fit(self, column: pd.Series) -> NumericFitter:
        f = self.cfg
        present = as_numbers(f.name, column).dropna()
        if present.empty and (f.missing in ("mean", "median", "mode") or f.scaling != "none"):
            raise UserError(f"numeric column {f.name!r} has no values in the training split")
        fill = {
            "mean": lambda: present.mean(),
            "median": lambda: present.median(),
            "mode": lambda: present.mode().iloc[0],
            "constant": lambda: f.fill_value,
            "drop": lambda: None,
        }[f.missing]()
        center, scale = {
            "standard": lambda: (present.mean(), present.std(ddof=0)),
            "minmax": lambda: (present.min(), present.max() - present.min()),
            "none": lambda: (0.0, 1.0),
        }[f.scaling]()
        scale = float(scale) if np.isfinite(scale) and scale > 0 else 1.0  # a constant column stays 0
        self.state_ = {"fill": None if fill is None else float(fill), "center": float(center), "scale": scale}
        return self

    def transform(self, column: pd.Series) -> np.ndarray:
        state = self.state_
        values = as_numbers(self.cfg.name, column)
        if state["fill"] is not None:
            values = values.fillna(state["fill"])
        return ((values - state["center"]) / state["scale"]).to_numpy(dtype=np.float64)  # (N,)


# ---------------------------------------------------------------------------- categorical


class CategoricalFitter(Fitter):
    """Fill value and the vocabulary, most frequent first; index 0 is "unknown"."""

    cfg: CategoricalFeature

    def fit(self, column: pd.Series) -> CategoricalFitter:
        f = self.cfg
        keys = category_keys(column)
        fill = {
            "mode": lambda: keys.mode().iloc[0] if keys.notna().any() else f.fill_value,
            "constant": lambda: f.fill_value,
            "drop": lambda: None,
        }[f.missing]()
        counts = keys.fillna(fill).value_counts() if fill is not None else keys.value_counts()
        counts = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")  # ties in name order
        self.state_ = {"fill": fill, "vocabulary": [str(v) for v in counts.index[: f.max_categories]]}
        return self

    def transform(self, column: pd.Series) -> np.ndarray:
        keys = category_keys(column)
        if self.state_["fill"] is not None:
            keys = keys.fillna(self.state_["fill"])
        return pd.Index(self.state_["vocabulary"]).get_indexer(keys) + 1  # (N,) 0 = unknown

    def spec(self) -> int:
        """Cardinality, the unknown category included."""
        return len(self.state_["vocabulary"]) + 1


# ----------------------------------------------------------------------------------- text


class TextFitter(Fitter):
    """A tokenizer trained on the training texts (or the model folder's own), saved as its JSON."""

    cfg: TextFeature
    _tokenizer: Tokenizer | None = None

    def fit(self, column: pd.Series) -> TextFitter:
        f = self.cfg
        fill = f.fill_value if f.missing == "constant" else None
        texts = _texts(fill, column)
        tokenizer = build_tokenizer(f, texts)
        pretrained = f.tokenizer == "pretrained"
        self.state_ = {
            "fill": fill,
            "tokenizer": tokenizer.to_str(),
            "vocab_size": tokenizer.get_vocab_size(),
            "pad_id": pad_token_id(tokenizer),
            "cjk_ngrams": 1 if pretrained else f.cjk_ngrams,
        }
        if pretrained:
            self.state_["unknown_rate"] = rate = unknown_rate(tokenizer, texts)
            check_unknown_rate(f, rate, texts)
        self._tokenizer = tokenizer
        return self

    def transform(self, column: pd.Series) -> np.ndarray:
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_str(self.state_["tokenizer"])
        ngrams = self.state_.get("cjk_ngrams", 1)  # states saved before CJK n-grams existed: characters
        return encode(self._tokenizer, _texts(self.state_["fill"], column), ngrams)  # (N, max_length)

    def spec(self) -> TextSpec:
        return TextSpec(self.state_["vocab_size"], self.cfg.max_length, self.state_["pad_id"])


def _texts(fill: str | None, column: pd.Series) -> list[str]:
    """The strings of `column`, missing ones filled (or, with missing="drop", already dropped)."""
    return (column.fillna(fill) if fill is not None else column.dropna()).astype(str).tolist()


# ---------------------------------------------------------------------------------- image


class ImageFitter(Fitter):
    """Channels and size (the config's, else the first image's) and per-channel pixel statistics."""

    cfg: ImageFeature

    def fit(self, column: pd.Series) -> ImageFitter:
        f = self.cfg
        c, h, w = image_shape(column.dropna().iloc[0])
        channels, size = f.channels or c, tuple(f.size or (h, w))
        x = _images(column, channels, size)  # (N, C, H, W)
        mean, std = (
            (x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3)).clamp_min(1e-6))
            if f.normalize
            else (torch.zeros(channels), torch.ones(channels))
        )
        self.state_ = {"channels": channels, "size": list(size), "mean": mean.tolist(), "std": std.tolist()}
        return self

    def transform(self, column: pd.Series) -> torch.Tensor:
        return self.decode(self._pixels(column))

    def store(self, column: pd.Series) -> torch.Tensor:
        """uint8 pixels (N, C, H, W) with ``storage: uint8``, else the normalized floats."""
        return self._pixels(column) if self.cfg.storage == "uint8" else self.transform(column)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized float32 pixels (B, C, H, W) from uint8 ones; float ones are already normalized."""
        if x.dtype != torch.uint8:
            return x
        return normalize_pixels(x, torch.tensor(self.state_["mean"]), torch.tensor(self.state_["std"]))

    def _pixels(self, column: pd.Series) -> torch.Tensor:
        if column.isna().any():
            raise UserError(f"image column {column.name!r} has no image in row {column.isna().idxmax()}")
        return load_pixels(column.tolist(), self.state_["channels"], tuple(self.state_["size"]))  # (N, C, H, W)

    def spec(self) -> tuple[int, int, int]:
        return (self.state_["channels"], *self.state_["size"])

    def augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return augment_images(x, self.cfg, generator)


def _images(column: pd.Series, channels: int, size: tuple[int, int]) -> torch.Tensor:
    if column.isna().any():
        raise UserError(f"image column {column.name!r} has no image in row {column.isna().idxmax()}")
    return load_images(column.tolist(), channels, size)

"""Feature types: one registry of `type` -> (config class, fitter), free of torch.

Each feature type declares its config class (below), its fitter (`modelworks.data.fitters`:
fit/transform state, imported when preprocessing runs) and ``input``, the kind of model input it
becomes (see `modelworks.data.schema`): ``numeric`` and ``categorical`` values are stacked into one
tensor per kind, ``text`` and ``image`` values get a tensor per feature. The models' encoders
read inputs by kind, so a new feature type that becomes an existing kind of input needs no model
change. `Feature` and `FeatureSpec`, the unions the experiment schema uses, derive from the registry.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag

from modelworks.config.base import Section
from modelworks.registry import Registry

FEATURES: Registry[Any] = Registry("feature type")


class NumericFeature(Section):
    name: str
    type: Literal["numeric"] = "numeric"
    missing: Literal["drop", "mean", "median", "mode", "constant"] = "mean"
    fill_value: float = 0.0
    scaling: Literal["standard", "minmax", "none"] = "standard"


FEATURES.declare("numeric", NumericFeature, impl="modelworks.data.fitters:NumericFitter", input="numeric")


class CategoricalFeature(Section):
    name: str
    type: Literal["categorical"] = "categorical"
    missing: Literal["drop", "mode", "constant"] = "constant"
    fill_value: str = "<missing>"
    max_categories: int = Field(1000, ge=1, description="rarer categories map to 'unknown'")


FEATURES.declare(
    "categorical", CategoricalFeature, impl="modelworks.data.fitters:CategoricalFitter", input="categorical"
)


class TextFeature(Section):
    name: str
    type: Literal["text"] = "text"
    missing: Literal["drop", "constant"] = "constant"
    fill_value: str = ""
    tokenizer: Literal["wordpiece", "vocab", "pretrained"] = Field(
        "wordpiece",
        description="wordpiece: subword vocabulary trained on the training split; vocab: plain "
        "word vocabulary (CJK characters are single tokens); pretrained: the model folder's own",
    )
    tokenizer_path: str | None = Field(None, description="folder with tokenizer.json (pretrained)")
    vocab_size: int = Field(8000, ge=8)
    min_frequency: int = Field(1, ge=1)
    max_length: int = Field(128, ge=1)
    lowercase: bool = True
    cjk_ngrams: int = Field(
        2, ge=1, le=3,
        description="wordpiece/vocab: each CJK character is a token, followed by the character n-grams up "
        "to this length that start at it (Chinese has no spaces; most words are two characters)",
    )  # fmt: skip
    max_unknown_rate: float = Field(
        0.05, ge=0.0, le=1.0,
        description="pretrained: the share of the training split's tokens the tokenizer may map to its "
        "unknown token before on_unknown applies",
    )  # fmt: skip
    on_unknown: Literal["warn", "error"] = Field(
        "warn", description="pretrained: above max_unknown_rate, warn (training goes on) or refuse"
    )


FEATURES.declare("text", TextFeature, impl="modelworks.data.fitters:TextFitter", input="text")


class ImageFeature(Section):
    name: str
    type: Literal["image"] = "image"
    size: tuple[int, int] | None = Field(None, description="(height, width); None keeps the first image's size")
    channels: Literal[1, 3] | None = Field(None, description="None keeps the first image's channels")
    normalize: bool = Field(True, description="subtract the training mean, divide by its std, per channel")
    storage: Literal["float32", "uint8"] = Field(
        "float32",
        description="how training holds the pixels in memory: float32 (normalized once), or uint8 (a quarter "
        "of the memory, normalized batch by batch as it is drawn, to the same values)",
    )
    flip: bool = Field(False, description="augment: random horizontal flips")
    translate: float = Field(0.0, ge=0.0, le=0.5, description="augment: max shift, fraction of size")
    rotate: float = Field(0.0, ge=0.0, le=180.0, description="augment: max rotation in degrees")


FEATURES.declare("image", ImageFeature, impl="modelworks.data.fitters:ImageFitter", input="image")


# ------------------------------------------------------------------------------------- unions


class AutoFeature(Section):
    """A feature whose type is inferred from the data; resolved into one of the typed features."""

    name: str
    type: Literal["auto"] = "auto"


def _feature_type(value: Any) -> str:
    return value.get("type", "auto") if isinstance(value, dict) else getattr(value, "type", "auto")


# A typed feature (every registered type), and what data.features accepts: a typed one or "auto".
Feature = Annotated[Union[FEATURES.config_classes()], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007 (a Union of a runtime tuple)
_TAGGED = (*(Annotated[e.config_cls, Tag(e.name)] for e in FEATURES), Annotated[AutoFeature, Tag("auto")])
FeatureSpec = Annotated[Union[_TAGGED], Discriminator(_feature_type)]  # type: ignore[valid-type]  # noqa: UP007 (a Union of a runtime tuple)

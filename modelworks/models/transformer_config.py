"""The transformer's config (torch-free; the model is `modelworks.models.transformer`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from modelworks.config.base import Section


class TransformerConfig(Section):
    type: Literal["transformer"] = "transformer"
    d_model: int = Field(128, ge=1, description="token width; a multiple of heads")
    heads: int = Field(4, ge=1)
    layers: int = Field(2, ge=1)
    ff_dim: int = Field(256, ge=1, description="width of each layer's feed-forward block")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="in the encoder and the head")
    pooling: Literal["cls", "mean"] = Field("cls", description="cls: the [CLS] output; mean: over real tokens")
    patch_size: int = Field(4, ge=1, description="image patch side; must divide height and width")
    max_length: int = Field(512, ge=1, description="longest text (in tokens) the learned positions cover")
    hidden: list[int] = Field(default_factory=list, description="widths of the dense layers before the output")
    activation: Literal["relu", "gelu", "tanh", "silu"] = "gelu"
    embedding_dim: int = Field(8, ge=1, description="per categorical column")

    @model_validator(mode="after")
    def _heads_divide(self) -> TransformerConfig:
        if self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of heads ({self.heads})")
        return self

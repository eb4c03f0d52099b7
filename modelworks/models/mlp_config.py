"""The MLP's config (torch-free; the model is `modelworks.models.mlp`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelworks.config.base import Section


class MLPConfig(Section):
    type: Literal["mlp"] = "mlp"
    hidden: list[int] = Field(default_factory=lambda: [128], description="widths of the hidden layers")
    activation: Literal["relu", "gelu", "tanh", "silu"] = "relu"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    embedding_dim: int = Field(8, ge=1, description="per categorical column")
    text_embedding_dim: int = Field(64, ge=1, description="bag-of-words embedding per text column")

"""The RNN's config (torch-free; the model is `modelworks.models.rnn`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelworks.config.base import Section


class RNNConfig(Section):
    type: Literal["rnn"] = "rnn"
    cell: Literal["lstm", "gru"] = "lstm"
    text_embedding_dim: int = Field(128, ge=1, description="token embedding width")
    hidden_size: int = Field(128, ge=1, description="recurrent state width, per direction")
    num_layers: int = Field(1, ge=1)
    bidirectional: bool = False
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="between recurrent layers and in the head")
    pooling: Literal["last", "mean", "max"] = Field("last", description="how the sequence becomes one vector")
    hidden: list[int] = Field(default_factory=lambda: [64], description="widths of the dense layers")
    activation: Literal["relu", "gelu", "tanh", "silu"] = "relu"
    embedding_dim: int = Field(8, ge=1, description="per categorical column")

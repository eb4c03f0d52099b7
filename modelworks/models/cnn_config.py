"""The CNN's config (torch-free; the model is `modelworks.models.cnn`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from modelworks.config.base import Section


class ConvBlock(Section):
    filters: int = Field(32, ge=1, description="output channels of every conv in the block")
    kernel_size: int = Field(3, ge=1)
    stride: int = Field(1, ge=1, description="of the block's first conv; the others use 1")
    padding: Literal["same", "valid"] | Annotated[int, Field(ge=0)] = Field(
        "same", description="same: keep the size (with stride > 1: kernel_size // 2); valid: none; or pixels"
    )
    convs: int = Field(1, ge=1, description="conv layers in the block")
    batch_norm: bool = True
    pool: Literal["max", "avg", "none"] = "max"
    pool_size: int = Field(2, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="after pooling")


class CNNConfig(Section):
    type: Literal["cnn"] = "cnn"
    blocks: list[ConvBlock] = Field(
        default_factory=lambda: [ConvBlock(filters=32), ConvBlock(filters=64)],
        min_length=1,
        description="convolution blocks, in order",
    )
    hidden: list[int] = Field(default_factory=lambda: [128], description="widths of the dense layers")
    activation: Literal["relu", "gelu", "tanh", "silu"] = "relu"
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="in the dense layers")
    embedding_dim: int = Field(8, ge=1, description="per categorical column")

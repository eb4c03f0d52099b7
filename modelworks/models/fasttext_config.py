"""The fastText-style text model's config (torch-free; the model is `modelworks.models.fasttext`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelworks.config.base import Section


class FastTextConfig(Section):
    type: Literal["fasttext"] = "fasttext"
    text_embedding_dim: int = Field(64, ge=1, description="width of every token and n-gram embedding")
    ngrams: int = Field(2, ge=1, le=3, description="token n-grams up to this length, hashed into `buckets`")
    buckets: int = Field(32768, ge=1, description="hash buckets shared by the n-grams of two or more tokens")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="on the averaged embedding")
    hidden: list[int] = Field(default_factory=list, description="dense layers before the output; [] is linear")
    activation: Literal["relu", "gelu", "tanh", "silu"] = "relu"
    init: Literal["fasttext", "normal"] = Field(
        "normal",
        description="fasttext: embeddings uniform in ±1/text_embedding_dim and a zero linear head, as fastText "
        "does (pairs with SGD at a high, linearly decaying lr); normal: PyTorch's defaults (N(0, 1) embeddings)",
    )
    embedding_dim: int = Field(8, ge=1, description="per categorical column")

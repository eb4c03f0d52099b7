"""MLP: every feature flattened into one vector, then fully connected layers.

Images are flattened pixel by pixel (the classic Flatten-128-10 network), text is the mean of its
token embeddings (a bag of words), numeric and categorical columns go through `TabularEncoder`.
While exporting, the bag of words is computed from plain embeddings with padding masked out:
ONNX has no EmbeddingBag that skips padding.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from modelworks.data.schema import InputSchema, image_key, text_key
from modelworks.models.inputs import Head, TabularEncoder, exporting
from modelworks.models.mlp_config import MLPConfig


class MLP(nn.Module):
    def __init__(self, config: MLPConfig, schema: InputSchema) -> None:
        super().__init__()
        self.config = config
        self.tabular = TabularEncoder(schema, config.embedding_dim)
        self.text_names = list(schema.text)
        self.text_pad = {name: spec.pad_id for name, spec in schema.text.items()}
        self.text = nn.ModuleDict(
            {
                name: nn.EmbeddingBag(spec.vocab_size, config.text_embedding_dim, mode="mean", padding_idx=spec.pad_id)
                for name, spec in schema.text.items()
            }
        )
        self.image_names = list(schema.image)
        in_dim = self.tabular.out_dim + len(self.text_names) * config.text_embedding_dim
        in_dim += sum(c * h * w for c, h, w in schema.image.values())
        self.head = Head(in_dim, config.hidden, schema.out_dim, config.activation, config.dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [x for x in [self.tabular(batch)] if x is not None]
        parts += [self.bag_of_words(name, batch[text_key(name)]) for name in self.text_names]  # (batch, text_dim)
        parts += [batch[image_key(name)].flatten(1) for name in self.image_names]  # (batch, C*H*W)
        return self.head(torch.cat(parts, dim=1))  # (batch, out_dim)

    def bag_of_words(self, name: str, ids: torch.Tensor) -> torch.Tensor:
        """Mean embedding of the real tokens (zeros for an empty text): (batch, seq) -> (batch, text_dim)."""
        bag = self.text[name]
        if not exporting():
            return bag(ids)
        real = (ids != self.text_pad[name]).unsqueeze(2).to(bag.weight.dtype)  # (batch, seq, 1)
        summed = (F.embedding(ids, bag.weight) * real).sum(dim=1)  # (batch, text_dim)
        return summed / real.sum(dim=1).clamp(min=1)

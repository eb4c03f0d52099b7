"""Pieces every architecture shares: the tabular side-input encoder and the output head.

An architecture encodes the feature kind it is made for (images for a CNN, token sequences for
an RNN, ...) and hands the numeric and categorical columns to `TabularEncoder`; the two are
concatenated and fed to `Head`.
"""

from __future__ import annotations

import torch
from torch import nn

from modelworks.data.schema import CATEGORICAL, NUMERIC, InputSchema
from modelworks.errors import UserError
from modelworks.models import MODELS

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}


def exporting() -> bool:
    """True while an exporter traces the model (ONNX, TorchScript tracing, torch.export).

    A few layers have no exportable form (packed sequences, EmbeddingBag with padding) or one that
    freezes the text length (PyTorch's encoder layer); models switch to an equivalent plain-tensor
    path while this is true.
    """
    return torch.onnx.is_in_onnx_export() or torch.jit.is_tracing() or torch.compiler.is_exporting()


class TabularEncoder(nn.Module):
    """Numeric columns as they are, each categorical column through its own embedding."""

    def __init__(self, schema: InputSchema, embedding_dim: int) -> None:
        super().__init__()
        self.n_numeric = len(schema.numeric)
        self.embeddings = nn.ModuleList(
            nn.Embedding(cardinality, min(embedding_dim, cardinality)) for cardinality in schema.categorical.values()
        )
        self.out_dim = self.n_numeric + sum(e.embedding_dim for e in self.embeddings)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        parts = []
        if self.n_numeric:
            parts.append(batch[NUMERIC])  # (batch, n_numeric)
        if len(self.embeddings):
            codes = batch[CATEGORICAL]  # (batch, n_categorical)
            parts.extend(emb(codes[:, i]) for i, emb in enumerate(self.embeddings))
        return torch.cat(parts, dim=1) if parts else None


class Head(nn.Module):
    """Dense layers ending in the output layer: hidden sizes, activation, dropout."""

    def __init__(self, in_dim: int, hidden: list[int], out_dim: int, activation: str, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(in_dim, width), ACTIVATIONS[activation](), nn.Dropout(dropout)]
            in_dim = width
        layers.append(nn.Linear(in_dim, out_dim))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def require_only(schema: InputSchema, model_type: str) -> None:
    """Fail with a clear message when the data holds a feature kind this architecture cannot read
    (the kinds each model reads are declared with it in `MODELS`)."""
    present = {"text": list(schema.text), "image": list(schema.image)}
    readers = {kind: [e.name for e in MODELS if kind in e.meta["reads"]] for kind in present}
    choices = "; ".join(f"{kind}: {', '.join(models)}" for kind, models in readers.items())
    for kind, names in present.items():
        if names and model_type not in readers[kind]:
            raise UserError(
                f"model.type {model_type!r} cannot encode {kind} feature(s) {', '.join(names)}; "
                f"use a model for {kind} ({choices}) "
                f"or exclude the column with data.exclude"
            )

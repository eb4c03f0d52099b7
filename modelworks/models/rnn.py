"""RNN: each text feature through token embeddings and an LSTM or GRU, pooled, then dense layers.

Sequences are packed by their true lengths (tokens that are not ``pad_id``), so padding never
reaches the recurrent cell: "last" is the state after each sequence's own last token (both
directions when bidirectional), "mean" and "max" pool the outputs over real tokens only. Numeric
and categorical columns go through `TabularEncoder` and join the pooled text before the head.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from modelworks.config.base import Section
from modelworks.data.schema import InputSchema, TextSpec, text_key
from modelworks.errors import UserError
from modelworks.models import MODELS
from modelworks.models.inputs import Head, TabularEncoder, require_only


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


class TextRNN(nn.Module):
    """Token ids -> embeddings -> packed LSTM/GRU -> one pooled vector per sequence."""

    def __init__(self, spec: TextSpec, config: RNNConfig) -> None:
        super().__init__()
        self.pad_id = spec.pad_id
        self.pooling = config.pooling
        self.bidirectional = config.bidirectional
        self.embedding = nn.Embedding(spec.vocab_size, config.text_embedding_dim, padding_idx=spec.pad_id)
        cell = nn.LSTM if config.cell == "lstm" else nn.GRU
        self.rnn = cell(
            config.text_embedding_dim,
            config.hidden_size,
            num_layers=config.num_layers,
            bidirectional=config.bidirectional,
            dropout=config.dropout if config.num_layers > 1 else 0.0,  # only acts between layers
            batch_first=True,
        )
        self.out_dim = config.hidden_size * (2 if config.bidirectional else 1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        lengths = (ids != self.pad_id).sum(dim=1).clamp(min=1)  # (batch,); an empty text reads one pad
        packed = pack_padded_sequence(self.embedding(ids), lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, state = self.rnn(packed)
        if self.pooling == "last":
            h_n = state[0] if isinstance(state, tuple) else state  # (layers * directions, batch, hidden)
            if self.bidirectional:
                return torch.cat([h_n[-2], h_n[-1]], dim=1)  # (batch, 2 * hidden): forward, backward
            return h_n[-1]  # (batch, hidden)
        padded, _ = pad_packed_sequence(outputs, batch_first=True, total_length=ids.shape[1])  # (batch, seq, out)
        real = torch.arange(ids.shape[1], device=ids.device)[None, :] < lengths[:, None]  # (batch, seq)
        if self.pooling == "mean":
            return (padded * real[..., None]).sum(dim=1) / lengths[:, None]  # (batch, out)
        return padded.masked_fill(~real[..., None], float("-inf")).amax(dim=1)  # (batch, out)


@MODELS.register("rnn", RNNConfig)
class RNN(nn.Module):
    def __init__(self, config: RNNConfig, schema: InputSchema) -> None:
        super().__init__()
        require_only(schema, "rnn", {"text"})
        if not schema.text:
            raise UserError("model.type 'rnn' needs at least one text feature; the data has none (try mlp)")
        self.config = config
        self.tabular = TabularEncoder(schema, config.embedding_dim)
        self.text_names = list(schema.text)
        self.texts = nn.ModuleDict({name: TextRNN(spec, config) for name, spec in schema.text.items()})
        self.dropout = nn.Dropout(config.dropout)
        in_dim = self.tabular.out_dim + sum(t.out_dim for t in self.texts.values())
        self.head = Head(in_dim, config.hidden, schema.out_dim, config.activation, config.dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [x for x in [self.tabular(batch)] if x is not None]
        parts += [self.dropout(self.texts[name](batch[text_key(name)])) for name in self.text_names]  # (batch, out)
        return self.head(torch.cat(parts, dim=1))  # (batch, out_dim)

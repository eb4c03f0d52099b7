"""RNN: each text feature through token embeddings and an LSTM or GRU, pooled, then dense layers.

Sequences are packed by their true lengths (tokens that are not ``pad_id``), so padding never
reaches the recurrent cell: "last" is the state after each sequence's own last token (both
directions when bidirectional), "mean" and "max" pool the outputs over real tokens only. Numeric
and categorical columns go through `TabularEncoder` and join the pooled text before the head.

Packed sequences cannot be exported (ONNX, TorchScript). While exporting, the same weights run
an equivalent masked path instead: each layer and direction over the padded batch, the backward
direction over every sequence reversed within its own length, so that padding again never reaches
a real token's state. Both paths give the same outputs (tests/export/test_export_paths.py).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from modelworks.data.schema import InputSchema, TextSpec, text_key
from modelworks.errors import UserError
from modelworks.models.inputs import Head, TabularEncoder, exporting, require_only
from modelworks.models.rnn_config import RNNConfig


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
        x = self.embedding(ids)  # (batch, seq, emb)
        if exporting():
            padded, last = self.run_masked(x, lengths)
        else:
            padded, last = self.run_packed(x, lengths)
        if self.pooling == "last":
            return last  # (batch, out)
        real = torch.arange(ids.shape[1], device=ids.device)[None, :] < lengths[:, None]  # (batch, seq)
        if self.pooling == "mean":
            return (padded * real[..., None]).sum(dim=1) / lengths[:, None]  # (batch, out)
        return padded.masked_fill(~real[..., None], float("-inf")).amax(dim=1)  # (batch, out)

    def run_packed(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(outputs (batch, seq, out) zero after each sequence's end, or None for "last"; last state (batch, out))."""
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, state = self.rnn(packed)
        h_n = state[0] if isinstance(state, tuple) else state  # (layers * directions, batch, hidden)
        last = torch.cat([h_n[-2], h_n[-1]], dim=1) if self.bidirectional else h_n[-1]  # forward, backward
        if self.pooling == "last":
            return None, last
        padded, _ = pad_packed_sequence(outputs, batch_first=True, total_length=x.shape[1])  # (batch, seq, out)
        return padded, last

    def run_masked(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What `run_packed` computes, without packing: outputs are valid before each sequence's end only."""
        rnn = self.rnn
        batch, seq, _ = x.shape
        steps = torch.arange(seq, device=x.device)[None, :]  # (1, seq)
        # Index that reverses each sequence's real tokens and leaves its padding in place; its own inverse.
        reverse = torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)  # (batch, seq)
        # Gather indices sized from the input, never from an RNN output: torch.export would otherwise
        # freeze the sequence length (pytorch/pytorch#191855).
        step_index = reverse[..., None].expand(batch, seq, rnn.hidden_size)  # (batch, seq, hidden)
        end_index = (lengths - 1)[:, None, None].expand(batch, 1, rnn.hidden_size)  # (batch, 1, hidden)
        finals: list[torch.Tensor] = []
        for layer in range(rnn.num_layers):
            outputs, finals = [], []
            for suffix in ["", "_reverse"][: 1 + rnn.bidirectional]:
                params = [
                    getattr(rnn, f"{kind}_l{layer}{suffix}")
                    for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                ]
                source = x if not suffix else x.gather(1, reverse[..., None].expand(batch, seq, x.shape[2]))
                h0 = x.new_zeros(1, batch, rnn.hidden_size)  # (1, batch, hidden)
                flags = (
                    True,
                    1,
                    0.0,
                    False,
                    False,
                    True,
                )  # biases, one layer, no dropout, eval, one direction, batch first
                if isinstance(rnn, nn.LSTM):
                    out = torch.lstm(source, (h0, h0), params, *flags)[0]  # (batch, seq, hidden)
                else:
                    out = torch.gru(source, h0, params, *flags)[0]  # (batch, seq, hidden)
                finals.append(out.gather(1, end_index).squeeze(1))  # (batch, hidden)
                outputs.append(out if not suffix else out.gather(1, step_index))
            x = torch.cat(outputs, dim=2)  # (batch, seq, out)
            if layer < rnn.num_layers - 1:
                x = F.dropout(x, rnn.dropout, self.training)
        return x, torch.cat(finals, dim=1)  # (batch, seq, out), (batch, out)


class RNN(nn.Module):
    def __init__(self, config: RNNConfig, schema: InputSchema) -> None:
        super().__init__()
        require_only(schema, "rnn")
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

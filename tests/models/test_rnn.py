"""RNN specifics: cells, directions and pooling, and that padding never changes the result."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from modelworks.data.schema import TextSpec, text_key
from modelworks.models.rnn import RNN, RNNConfig

from .synthetic import synthetic_batch, synthetic_schema

SPEC = TextSpec(vocab_size=50, max_length=12, pad_id=0)


def test_bidirectional_gru() -> None:
    schema = synthetic_schema("regression", text={"review": SPEC})
    model = RNN(RNNConfig(cell="gru", bidirectional=True, hidden_size=16, num_layers=2, dropout=0.1), schema)
    text = model.texts["review"]
    assert isinstance(text.rnn, nn.GRU) and text.rnn.bidirectional and text.out_dim == 32
    assert model(synthetic_batch(schema, 5)).shape == (5, 1)


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_does_not_change_the_output(pooling: str, cell: str, bidirectional: bool) -> None:
    torch.manual_seed(0)
    schema = synthetic_schema(text={"review": SPEC})
    model = RNN(RNNConfig(cell=cell, bidirectional=bidirectional, pooling=pooling, hidden_size=8), schema).eval()
    batch = synthetic_batch(schema, 4)
    longer = dict(batch)
    longer[text_key("review")] = torch.cat([batch[text_key("review")], torch.zeros(4, 7, dtype=torch.long)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(batch), model(longer))


def test_last_state_is_read_after_each_sequences_own_last_token() -> None:
    torch.manual_seed(0)
    schema = synthetic_schema(text={"review": SPEC})
    model = RNN(RNNConfig(cell="gru", hidden_size=8), schema).eval()
    text = model.texts["review"]
    ids = torch.tensor([[5, 6, 7, 0, 0]])
    with torch.no_grad():
        _, h_n = text.rnn(text.embedding(ids[:, :3]))  # the unpadded sequence, unpacked
        torch.testing.assert_close(text(ids), h_n[-1])

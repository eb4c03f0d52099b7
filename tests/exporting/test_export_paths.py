"""The export-friendly paths models switch to while exporting compute what their usual paths do:
the RNN's masked recurrence (instead of packed sequences), the MLP's bag of words (instead of
EmbeddingBag) and the transformer's plain attention (instead of PyTorch's encoder layer)."""

from __future__ import annotations

import itertools

import pytest
import torch

from modelworks.data.schema import CATEGORICAL, NUMERIC, InputSchema, TextSpec, image_key, text_key
from modelworks.models import mlp, rnn, transformer
from modelworks.models.inputs import exporting

SPEC = TextSpec(vocab_size=50, max_length=12, pad_id=0)


def schema(text: bool = True, image: bool = False) -> InputSchema:
    return InputSchema(
        task="multiclass",
        num_classes=3,
        numeric=["x"],
        categorical={"c": 4},
        text={"review": SPEC} if text else {},
        image={"photo": (1, 8, 8)} if image else {},
    )


def batch(s: InputSchema, n: int = 9) -> dict[str, torch.Tensor]:
    """Texts of every length from empty (only padding) to max_length, right-padded."""
    g = torch.Generator().manual_seed(0)
    out = {NUMERIC: torch.randn(n, 1, generator=g), CATEGORICAL: torch.randint(0, 4, (n, 1), generator=g)}
    if s.text:
        ids = torch.randint(1, SPEC.vocab_size, (n, SPEC.max_length), generator=g)
        lengths = torch.linspace(0, SPEC.max_length, n).round().long()  # 0 ... max_length
        ids[torch.arange(SPEC.max_length)[None, :] >= lengths[:, None]] = SPEC.pad_id
        out[text_key("review")] = ids
    if s.image:
        out[image_key("photo")] = torch.randn(n, 1, 8, 8, generator=g)
    return out


def both_paths(model: torch.nn.Module, module, inputs, monkeypatch) -> tuple[torch.Tensor, torch.Tensor]:
    """(usual output, export-path output) of `model` in eval mode."""
    model.eval()
    with torch.no_grad():
        usual = model(inputs)
        monkeypatch.setattr(module, "exporting", lambda: True)
        exported = model(inputs)
        monkeypatch.setattr(module, "exporting", exporting)
    return usual, exported


@pytest.mark.parametrize(
    "cell,bidirectional,layers,pooling",
    list(itertools.product(["lstm", "gru"], [False, True], [1, 2], ["last", "mean", "max"])),
)
def test_masked_rnn_equals_packed(monkeypatch, cell: str, bidirectional: bool, layers: int, pooling: str) -> None:
    torch.manual_seed(0)
    s = schema()
    config = rnn.RNNConfig(
        cell=cell,
        bidirectional=bidirectional,
        num_layers=layers,
        pooling=pooling,
        hidden_size=8,
        text_embedding_dim=6,
        dropout=0.2,
    )
    usual, exported = both_paths(rnn.RNN(config, s), rnn, batch(s), monkeypatch)
    torch.testing.assert_close(exported, usual, atol=1e-6, rtol=0)


def test_mlp_bag_of_words_equals_embedding_bag(monkeypatch) -> None:
    torch.manual_seed(0)
    s = schema()
    usual, exported = both_paths(mlp.MLP(mlp.MLPConfig(text_embedding_dim=8), s), mlp, batch(s), monkeypatch)
    torch.testing.assert_close(exported, usual, atol=1e-6, rtol=0)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_plain_attention_equals_the_encoder_layers(monkeypatch, pooling: str) -> None:
    torch.manual_seed(0)
    s = schema(text=True, image=True)
    config = transformer.TransformerConfig(d_model=16, heads=2, layers=2, ff_dim=32, pooling=pooling, max_length=12)
    usual, exported = both_paths(transformer.Transformer(config, s), transformer, batch(s), monkeypatch)
    torch.testing.assert_close(exported, usual, atol=1e-5, rtol=0)

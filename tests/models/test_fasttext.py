"""The fastText-style model's own settings (the shared contract suite covers the rest)."""

from __future__ import annotations

import torch

from modelworks.models.fasttext import FastText
from modelworks.models.fasttext_config import FastTextConfig
from tests.models.synthetic import minilm_text_spec, synthetic_batch, synthetic_schema


def test_fasttext_init_starts_small_embeddings_and_a_zero_head():
    schema = synthetic_schema(text={"text": minilm_text_spec()})
    model = FastText(FastTextConfig(init="fasttext", text_embedding_dim=16, buckets=64), schema)
    bag = model.texts["text"]
    for table in (bag.tokens, bag.grams):
        assert table.weight.abs().max() <= 1.0 / 16
    assert all(bool((p == 0).all()) for p in model.head.parameters())
    outputs = model(synthetic_batch(schema, 4))  # a zero head: every class equally likely at the start
    assert torch.equal(outputs, torch.zeros_like(outputs))


def test_normal_init_keeps_pytorch_defaults():
    schema = synthetic_schema(text={"text": minilm_text_spec()})
    model = FastText(FastTextConfig(text_embedding_dim=16, buckets=64), schema)
    assert model.texts["text"].tokens.weight.abs().max() > 1.0

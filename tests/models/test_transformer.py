"""Transformer specifics: patch sizes, position limits, and that text padding is masked out."""

from __future__ import annotations

import pydantic
import pytest
import torch

from modelworks.data.schema import TextSpec, text_key
from modelworks.errors import UserError
from modelworks.models.transformer import Transformer, TransformerConfig

from .synthetic import synthetic_batch, synthetic_schema

SPEC = TextSpec(vocab_size=50, max_length=12, pad_id=0)


def test_a_patch_size_that_does_not_divide_the_image_is_a_user_error() -> None:
    schema = synthetic_schema(image={"scan": (1, 8, 10)})
    with pytest.raises(UserError, match=r"'scan' is 8x10.*patch_size 4"):
        Transformer(TransformerConfig(), schema)


def test_image_patches_become_tokens() -> None:
    schema = synthetic_schema(image={"scan": (3, 16, 8)})
    model = Transformer(TransformerConfig(patch_size=4, d_model=32, heads=2, pooling="mean"), schema)
    assert model.images["scan"].positions.shape == (1, 1 + 4 * 2, 32)
    assert model(synthetic_batch(schema, 2)).shape == (2, 3)


def test_d_model_must_be_a_multiple_of_heads() -> None:
    with pytest.raises(pydantic.ValidationError, match="multiple of heads"):
        TransformerConfig(d_model=30, heads=4)


def test_text_longer_than_max_length_is_a_user_error() -> None:
    schema = synthetic_schema(text={"review": SPEC})
    with pytest.raises(UserError, match="'review'.*model.max_length"):
        Transformer(TransformerConfig(max_length=8), schema)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_padding_does_not_change_the_output(pooling: str) -> None:
    torch.manual_seed(0)
    schema = synthetic_schema(text={"review": SPEC})
    model = Transformer(TransformerConfig(d_model=32, heads=4, pooling=pooling, max_length=20), schema).eval()
    batch = synthetic_batch(schema, 4)
    longer = dict(batch)
    longer[text_key("review")] = torch.cat([batch[text_key("review")], torch.zeros(4, 6, dtype=torch.long)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(batch), model(longer), atol=1e-5, rtol=1e-5)

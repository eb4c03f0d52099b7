"""CNN specifics: flattened sizes from the dry run, block options, and images too small for the stack."""

from __future__ import annotations

import pytest
import torch

from modelworks.errors import UserError
from modelworks.models.cnn import CNN, CNNConfig, ConvBlock

from .synthetic import synthetic_batch, synthetic_schema


def test_two_blocks_on_28x28_flatten_to_64x7x7() -> None:
    schema = synthetic_schema("multiclass", num_classes=10, image={"digit": (1, 28, 28)})
    model = CNN(CNNConfig(), schema)
    assert model.flat_dims == {"digit": 64 * 7 * 7}
    assert model(synthetic_batch(schema, 2)).shape == (2, 10)


def test_block_options_change_the_flattened_size() -> None:
    schema = synthetic_schema(image={"photo": (3, 32, 32)})
    config = CNNConfig(
        blocks=[
            ConvBlock(filters=8, kernel_size=5, padding="valid", pool="avg"),  # 32 -> 28 -> 14
            ConvBlock(filters=16, stride=2, convs=2, batch_norm=False, pool="none", dropout=0.2),  # 14 -> 7
        ],
        hidden=[],
    )
    model = CNN(config, schema)
    assert model.flat_dims == {"photo": 16 * 7 * 7}
    assert model(synthetic_batch(schema, 3)).shape == (3, 3)


def test_each_image_feature_has_its_own_stack() -> None:
    schema = synthetic_schema(image={"front": (1, 8, 8), "side": (3, 16, 16)})
    model = CNN(CNNConfig(), schema)
    assert model.flat_dims == {"front": 64 * 2 * 2, "side": 64 * 4 * 4}
    assert model(synthetic_batch(schema, 2)).shape == (2, 3)


def test_an_image_too_small_for_the_stack_is_a_user_error() -> None:
    schema = synthetic_schema(image={"thumb": (1, 2, 2)})
    with pytest.raises(UserError, match=r"thumb.*model\.blocks\[1\]"):
        CNN(CNNConfig(), schema)


def test_the_dry_run_leaves_batch_norm_statistics_alone() -> None:
    model = CNN(CNNConfig(), synthetic_schema(image={"photo": (1, 8, 8)}))
    norm = model.convs["photo"][0][1]
    assert int(norm.num_batches_tracked) == 0 and model.training
    assert torch.equal(norm.running_mean, torch.zeros_like(norm.running_mean))

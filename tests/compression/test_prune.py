"""Pruning really zeroes the requested fraction of weights, fine-tuning wins accuracy back, and
the file shrinks with the sparsity."""

from __future__ import annotations

import json

import torch

from modelworks.api import compress
from modelworks.compression.prune import prunable_layers, sparsity

from .conftest import reopened_matches


def stats(run) -> dict:
    return json.loads((run.path / "compression.json").read_text())


def test_unstructured_pruning_reaches_the_sparsity_and_fine_tuning_recovers(digits_mlp):
    run = compress(digits_mlp, "prune", amount=0.9, finetune_epochs=3)
    import modelworks

    reopened = modelworks.load_run(run.path)
    layers = prunable_layers(reopened.model, "unstructured")
    assert abs(sparsity(layers) - 0.9) <= 0.01
    result = stats(run)
    before, after = result["notes"]["before_finetune"]["accuracy"], result["compressed"]["metrics"]["accuracy"]
    parent_accuracy = result["parent_stats"]["metrics"]["accuracy"]
    assert before < parent_accuracy - 0.05  # 90% of the weights gone hurts ...
    assert after >= before + 0.03 and after >= parent_accuracy - 0.05  # ... and fine-tuning wins it back
    assert run.config.compression.options["finetune_lr"] == digits_mlp.config.train.lr  # the choice is recorded
    assert result["compressed"]["nonzero"] < 0.2 * result["compressed"]["parameters"]
    assert result["compressed"]["size_bytes"] < 0.25 * result["parent_stats"]["size_bytes"]  # bitmask + values
    assert len(run.history) == 3
    reopened_matches(run)


def test_structured_pruning_zeroes_whole_channels_and_keeps_the_output_layer(digits_cnn):
    run = compress(digits_cnn, "prune", amount=0.5, structure="structured")
    model = run.model
    layers = prunable_layers(model, "structured")
    assert [name for name, _ in layers] == ["convs.image.0.0", "convs.image.1.0", "head.layers.0"]
    assert abs(sparsity(layers) - 0.5) <= 0.01
    for _, layer in layers:
        rows = layer.weight.flatten(1)  # (out_channels, fan_in)
        dead = (rows == 0).all(dim=1)
        assert int(dead.sum()) == layer.weight.shape[0] // 2  # whole channels, half of them
    assert torch.count_nonzero(model.head.layers[-1].weight) == model.head.layers[-1].weight.numel()
    reopened_matches(run)

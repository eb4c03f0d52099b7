"""The model registry: one file per architecture, each registering (config class, module).

Every model is built as ``Model(config, schema)`` and maps a batch (see `modelworks.data.schema`)
to raw outputs of shape ``(batch, schema.out_dim)``: logits for classification, values for
regression. Importing this package registers every architecture.
"""

from __future__ import annotations

import torch
from torch import nn

from modelworks.data.schema import InputSchema
from modelworks.registry import Registry

MODELS: Registry[type[nn.Module]] = Registry("model")

# Registration happens on import; the order here is the order `modelworks init` lists them.
from modelworks.models import mlp  # noqa: E402,F401
from modelworks.models import cnn  # noqa: E402,F401
from modelworks.models import rnn  # noqa: E402,F401
from modelworks.models import transformer  # noqa: E402,F401
from modelworks.models import pretrained  # noqa: E402,F401


def build_model(config, schema: InputSchema) -> nn.Module:
    """Instantiate the registered architecture named by ``config.type`` for ``schema``."""
    return MODELS.get(config.type, where="model.type").impl(config, schema)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["MODELS", "build_model", "count_parameters", "torch"]

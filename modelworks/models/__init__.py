"""The model registry: one table of `type` -> (config class, architecture), free of torch.

Each architecture is two files, as in transformers: ``<name>_config.py`` holds its config class
(pydantic only, so that loading the experiment schema never imports torch) and ``<name>.py`` the
``nn.Module``, imported the first time the model is built. Every model is built as
``Model(config, schema)`` and maps a batch (see `modelworks.data.schema`) to raw outputs of shape
``(batch, schema.out_dim)``: logits for classification, values for regression.

``reads`` declares the feature kinds an architecture encodes besides numeric and categorical
columns (which every model reads through `TabularEncoder`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelworks.data.schema import InputSchema
from modelworks.models.cnn_config import CNNConfig
from modelworks.models.fasttext_config import FastTextConfig
from modelworks.models.mlp_config import MLPConfig
from modelworks.models.pretrained_config import PretrainedConfig
from modelworks.models.rnn_config import RNNConfig
from modelworks.models.transformer_config import TransformerConfig
from modelworks.registry import Registry

if TYPE_CHECKING:
    from torch import nn

MODELS: Registry[type[nn.Module]] = Registry("model")

# The order here is the order `modelworks init` lists them.
MODELS.declare("mlp", MLPConfig, impl="modelworks.models.mlp:MLP", reads=("image", "text"))
MODELS.declare("cnn", CNNConfig, impl="modelworks.models.cnn:CNN", reads=("image",))
MODELS.declare("rnn", RNNConfig, impl="modelworks.models.rnn:RNN", reads=("text",))
MODELS.declare("fasttext", FastTextConfig, impl="modelworks.models.fasttext:FastText", reads=("text",))
MODELS.declare(
    "transformer", TransformerConfig, impl="modelworks.models.transformer:Transformer", reads=("image", "text")
)
MODELS.declare("pretrained", PretrainedConfig, impl="modelworks.models.pretrained:Pretrained", reads=("text",))


def build_model(config: Any, schema: InputSchema) -> nn.Module:
    """Instantiate the registered architecture named by ``config.type`` for ``schema``."""
    return MODELS.get(config.type, where="model.type").impl(config, schema)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["MODELS", "build_model", "count_parameters"]

"""A trained model in the form that answers fastest, with the same function: for serving and export.

`merge_adapters` folds LoRA adapters into the weights they adapt (one matmul per layer instead of
three); `inference_form` also puts convolution weights in channels-last layout, which oneDNN's
CPU convolutions run about twice as fast at batch 32 (`bench/serving.py`). Neither changes what
the model computes beyond float rounding.
"""

from __future__ import annotations

import torch
from torch import nn


def merge_adapters(model: nn.Module) -> nn.Module:
    """`model` with every peft-wrapped child (a LoRA-tuned encoder) merged into plain layers, in place."""
    for name, child in list(model.named_children()):
        if hasattr(child, "merge_and_unload") and hasattr(child, "peft_config"):
            setattr(model, name, child.merge_and_unload())
    return model


def inference_form(model: nn.Module) -> nn.Module:
    """`model` in eval mode, adapters merged, 4-D (convolution) weights channels-last; in place."""
    model = merge_adapters(model.eval())
    if any(isinstance(m, nn.Conv2d) for m in model.modules()):
        model.to(memory_format=torch.channels_last)  # only 4-D parameters change layout
    return model

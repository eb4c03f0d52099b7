"""CNN: each image feature through its own stack of convolution blocks, flattened, then dense layers.

A block is ``convs`` x (Conv2d -> BatchNorm -> activation), then pooling and dropout; the default
two blocks of 32 and 64 filters with a 128-wide dense layer is the classic MNIST network
(conv-pool-conv-pool-dense). Numeric and categorical columns go through `TabularEncoder` and join
the flattened image features before the head.
"""

from __future__ import annotations

import torch
from torch import nn

from modelworks.data.schema import InputSchema, image_key
from modelworks.errors import UserError
from modelworks.models.cnn_config import CNNConfig, ConvBlock
from modelworks.models.inputs import ACTIVATIONS, Head, TabularEncoder, require_only


def conv_block(in_channels: int, block: ConvBlock, activation: str) -> nn.Sequential:
    """One block: `convs` x (conv, batch norm, activation), then pooling and dropout."""
    layers: list[nn.Module] = []
    for i in range(block.convs):
        stride = block.stride if i == 0 else 1
        padding = block.padding
        if padding == "same" and stride > 1:  # PyTorch's "same" refuses strides; pad half the kernel instead
            padding = block.kernel_size // 2
        layers.append(
            nn.Conv2d(in_channels, block.filters, block.kernel_size, stride, padding, bias=not block.batch_norm)
        )
        if block.batch_norm:
            layers.append(nn.BatchNorm2d(block.filters))
        layers.append(ACTIVATIONS[activation]())
        in_channels = block.filters
    if block.pool == "max":
        layers.append(nn.MaxPool2d(block.pool_size))
    elif block.pool == "avg":
        layers.append(nn.AvgPool2d(block.pool_size))
    if block.dropout:
        layers.append(nn.Dropout(block.dropout))
    return nn.Sequential(*layers)


def flat_size(name: str, stack: nn.Sequential, shape: tuple[int, int, int]) -> int:
    """Width of the flattened output, found by a dry run on zeros (a clear error if it shrinks away)."""
    x = torch.zeros(1, *shape)  # (1, C, H, W)
    was_training = stack.training
    stack.eval()  # keep batch-norm statistics untouched
    try:
        with torch.no_grad():
            for i, block in enumerate(stack):
                try:
                    x = block(x)
                except RuntimeError as e:
                    raise UserError(
                        f"image feature {name!r} ({'x'.join(map(str, shape))}) is too small for cnn block {i} "
                        f"(model.blocks[{i}]): {e}; use fewer blocks, smaller kernels or pool: none"
                    ) from e
    finally:
        stack.train(was_training)
    return x.flatten(1).shape[1]


class CNN(nn.Module):
    def __init__(self, config: CNNConfig, schema: InputSchema) -> None:
        super().__init__()
        require_only(schema, "cnn")
        if not schema.image:
            raise UserError("model.type 'cnn' needs at least one image feature; the data has none (try mlp)")
        self.config = config
        self.tabular = TabularEncoder(schema, config.embedding_dim)
        self.image_names = list(schema.image)
        self.convs = nn.ModuleDict()
        self.flat_dims: dict[str, int] = {}
        for name, (channels, height, width) in schema.image.items():
            blocks, in_channels = [], channels
            for block in config.blocks:
                blocks.append(conv_block(in_channels, block, config.activation))
                in_channels = block.filters
            self.convs[name] = nn.Sequential(*blocks)
            self.flat_dims[name] = flat_size(name, self.convs[name], (channels, height, width))
        in_dim = self.tabular.out_dim + sum(self.flat_dims.values())
        self.head = Head(in_dim, config.hidden, schema.out_dim, config.activation, config.dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [x for x in [self.tabular(batch)] if x is not None]
        for name in self.image_names:
            features = self.convs[name](batch[image_key(name)])  # (batch, filters, H', W')
            parts.append(features.flatten(1))  # (batch, filters * H' * W')
        return self.head(torch.cat(parts, dim=1))  # (batch, out_dim)

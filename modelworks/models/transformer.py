"""Transformer: each text or image feature as a token sequence through its own pre-norm encoder.

Text: token embeddings plus learned positions, with a learned [CLS] vector in front and padding
masked out of attention. Images (ViT-style): non-overlapping ``patch_size`` patches, each
projected to ``d_model`` by one strided convolution, plus learned positions and the [CLS] vector.
Each sequence is pooled (the [CLS] output, or the mean over real tokens); numeric and categorical
columns go through `TabularEncoder` and join the pooled features before the head.

While exporting, the encoder runs as the plain tensor operations of `encode_exportable`: traced,
PyTorch's own attention freezes the sequence length into the graph.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from modelworks.data.schema import InputSchema, TextSpec, image_key, text_key
from modelworks.errors import UserError
from modelworks.models.inputs import Head, TabularEncoder, exporting, require_only
from modelworks.models.transformer_config import TransformerConfig


def encoder_stack(config: TransformerConfig) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        config.d_model,
        config.heads,
        config.ff_dim,
        config.dropout,
        activation="gelu",
        batch_first=True,
        norm_first=True,
    )
    # Pre-norm layers leave the residual stream unnormalized: one final LayerNorm closes the stack.
    return nn.TransformerEncoder(layer, config.layers, norm=nn.LayerNorm(config.d_model), enable_nested_tensor=False)


def encode_exportable(encoder: nn.TransformerEncoder, x: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
    """What `encoder_stack` computes in eval mode, as operations whose shapes follow the input's.

    x: (batch, seq, d_model); pad: (batch, seq) True at padding, or None.
    """
    mask = None if pad is None else torch.zeros_like(pad, dtype=x.dtype).masked_fill(pad, float("-inf"))[:, None, None]
    for layer in encoder.layers:  # pre-norm: x + attention(norm1(x)), then x + feed_forward(norm2(x))
        attention = layer.self_attn
        qkv = F.linear(layer.norm1(x), attention.in_proj_weight, attention.in_proj_bias)  # (batch, seq, 3 * d_model)
        q, k, v = (t.unflatten(-1, (attention.num_heads, -1)).transpose(1, 2) for t in qkv.chunk(3, dim=-1))
        heads = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (batch, heads, seq, d_head)
        x = x + attention.out_proj(heads.transpose(1, 2).flatten(2))  # (batch, seq, d_model)
        x = x + layer.linear2(layer.activation(layer.linear1(layer.norm2(x))))
    return encoder.norm(x)


class TextTransformer(nn.Module):
    """Token ids -> [CLS] + token embeddings + positions -> encoder -> one pooled vector."""

    def __init__(self, name: str, spec: TextSpec, config: TransformerConfig) -> None:
        super().__init__()
        if spec.max_length > config.max_length:
            raise UserError(
                f"text feature {name!r} holds up to {spec.max_length} tokens but model.max_length is "
                f"{config.max_length}; raise model.max_length or lower the feature's max_length"
            )
        self.pad_id = spec.pad_id
        self.pooling = config.pooling
        self.tokens = nn.Embedding(spec.vocab_size, config.d_model, padding_idx=spec.pad_id)
        self.cls = nn.Parameter(torch.zeros(1, 1, config.d_model))
        self.positions = nn.Parameter(torch.randn(1, config.max_length + 1, config.d_model) * 0.02)  # +1: [CLS]
        self.encoder = encoder_stack(config)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        batch, length = ids.shape
        x = torch.cat([self.cls.expand(batch, -1, -1), self.tokens(ids)], dim=1)  # (batch, 1 + seq, d_model)
        x = x + self.positions[:, : length + 1]
        pad = torch.cat([ids.new_zeros(batch, 1, dtype=torch.bool), ids == self.pad_id], dim=1)  # (batch, 1 + seq)
        if exporting():
            x = encode_exportable(self.encoder, x, pad)  # (batch, 1 + seq, d_model)
        else:
            x = self.encoder(x, src_key_padding_mask=pad)  # (batch, 1 + seq, d_model)
        if self.pooling == "cls":
            return x[:, 0]  # (batch, d_model)
        real = ~pad[:, 1:, None]  # (batch, seq, 1)
        return (x[:, 1:] * real).sum(dim=1) / real.sum(dim=1).clamp(min=1)  # (batch, d_model)


class ImageTransformer(nn.Module):
    """Pixels -> [CLS] + patch embeddings + positions -> encoder -> one pooled vector (ViT)."""

    def __init__(self, name: str, shape: tuple[int, int, int], config: TransformerConfig) -> None:
        super().__init__()
        channels, height, width = shape
        p = config.patch_size
        if height % p or width % p:
            raise UserError(
                f"image feature {name!r} is {height}x{width}, which model.patch_size {p} does not divide; "
                f"pick a patch_size that divides both, or resize the images (data.features[].size)"
            )
        self.pooling = config.pooling
        self.patches = nn.Conv2d(channels, config.d_model, kernel_size=p, stride=p)
        self.cls = nn.Parameter(torch.zeros(1, 1, config.d_model))
        n_patches = (height // p) * (width // p)
        self.positions = nn.Parameter(torch.randn(1, n_patches + 1, config.d_model) * 0.02)  # +1: [CLS]
        self.encoder = encoder_stack(config)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patches(images).flatten(2).transpose(1, 2)  # (batch, patches, d_model)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.positions  # (batch, 1 + patches, d)
        x = encode_exportable(self.encoder, x, None) if exporting() else self.encoder(x)  # (batch, 1 + patches, d)
        return x[:, 0] if self.pooling == "cls" else x[:, 1:].mean(dim=1)  # (batch, d_model)


class Transformer(nn.Module):
    def __init__(self, config: TransformerConfig, schema: InputSchema) -> None:
        super().__init__()
        require_only(schema, "transformer")
        if not schema.text and not schema.image:
            raise UserError("model.type 'transformer' needs a text or image feature; the data has neither (try mlp)")
        self.config = config
        self.tabular = TabularEncoder(schema, config.embedding_dim)
        self.text_names = list(schema.text)
        self.image_names = list(schema.image)
        self.texts = nn.ModuleDict({n: TextTransformer(n, spec, config) for n, spec in schema.text.items()})
        self.images = nn.ModuleDict({n: ImageTransformer(n, shape, config) for n, shape in schema.image.items()})
        in_dim = self.tabular.out_dim + config.d_model * (len(self.text_names) + len(self.image_names))
        self.head = Head(in_dim, config.hidden, schema.out_dim, config.activation, config.dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [x for x in [self.tabular(batch)] if x is not None]
        parts += [self.texts[name](batch[text_key(name)]) for name in self.text_names]  # (batch, d_model)
        parts += [self.images[name](batch[image_key(name)]) for name in self.image_names]  # (batch, d_model)
        return self.head(torch.cat(parts, dim=1))  # (batch, out_dim)

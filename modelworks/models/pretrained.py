"""Pretrained: a Hugging Face encoder from a local folder, fine-tuned fully, with LoRA, or frozen.

The one text feature (tokenized with the folder's own tokenizer: ``tokenizer: pretrained``) goes
through the encoder with padding masked out; its last hidden states are pooled (mean over real
tokens, or the first token) and joined by the numeric and categorical columns from
`TabularEncoder` before the head.

Weights are read from ``model.safetensors`` only, never from pickles. `resolve_pretrained`
records the encoder's ``config.json`` in ``hf_config``, so that a saved run rebuilds the same
architecture without the original folder: loading a run sets ``load_weights: false``, builds the
encoder from ``hf_config`` alone, and then loads the run's own weights over it.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from modelworks.data.schema import InputSchema, text_key
from modelworks.errors import UserError
from modelworks.models.inputs import Head, TabularEncoder, require_only
from modelworks.models.pretrained_config import (
    LoraSection,
    PretrainedConfig,
    pretrained_folder,
    resolve_pretrained,  # noqa: F401  (re-exported for callers)
)

# -------------------------------------------------------------------------------------- model


def load_encoder(config: PretrainedConfig) -> nn.Module:
    """The bare encoder: the folder's weights, or (load_weights false) hf_config's architecture."""
    from transformers import AutoConfig, AutoModel  # heavy import, paid only by this model

    hf_config = None
    if config.hf_config is not None:
        try:
            hf_config = AutoConfig.for_model(**config.hf_config)
        except (KeyError, TypeError, ValueError) as e:
            detail = str(e) if len(str(e)) < 200 else str(e)[:200] + "..."
            raise UserError(f"model.hf_config is not a config.json that transformers can read: {detail}") from e
    if config.load_weights:
        from transformers.utils import logging as hf_logging  # heavy import, paid only by this model

        folder = pretrained_folder(config)
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # our own progress bar speaks for training; restored below
        try:
            return AutoModel.from_pretrained(folder, config=hf_config, use_safetensors=True, dtype=torch.float32)
        finally:
            if bars:
                hf_logging.enable_progress_bar()
    if hf_config is None:
        raise UserError(
            "model.load_weights is false but model.hf_config is empty: the encoder's architecture is "
            "unknown; set load_weights: true (with model.path) or fill hf_config from its config.json"
        )
    return AutoModel.from_config(hf_config, dtype=torch.float32)


def add_lora(encoder: nn.Module, lora: LoraSection) -> nn.Module:
    """Wrap the encoder in peft LoRA adapters; only the adapters remain trainable."""
    from peft import LoraConfig, get_peft_model  # heavy import, paid only by LoRA fine-tuning

    peft_config = LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=list(lora.target_modules)
    )
    try:
        with warnings.catch_warnings():  # peft asks transformers a deprecated question; not ours to fix
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
            return get_peft_model(encoder, peft_config)
    except ValueError as e:
        raise UserError(f"model.lora.target_modules {lora.target_modules} do not fit this encoder: {e}") from e


def check_fits(name: str, vocab_size: int, max_length: int, hf_config: Any) -> None:
    """The feature's token ids and length must be ones the encoder knows."""
    if vocab_size > hf_config.vocab_size:
        raise UserError(
            f"text feature {name!r} has {vocab_size} token ids but the encoder knows {hf_config.vocab_size}; "
            f"tokenize it with the model's own tokenizer (tokenizer: pretrained)"
        )
    limit = getattr(hf_config, "max_position_embeddings", None)
    if limit is not None and max_length > limit:
        raise UserError(
            f"text feature {name!r} holds up to {max_length} tokens but the encoder reads at most {limit}; "
            f"lower the feature's max_length"
        )


class Pretrained(nn.Module):
    def __init__(self, config: PretrainedConfig, schema: InputSchema) -> None:
        super().__init__()
        require_only(schema, "pretrained")
        if len(schema.text) != 1:
            found = ", ".join(schema.text) or "none"
            raise UserError(f"model.type 'pretrained' reads exactly one text feature; the data has {found}")
        self.config = config
        self.text_name, spec = next(iter(schema.text.items()))
        self.pad_id = spec.pad_id
        encoder = load_encoder(config)
        check_fits(self.text_name, spec.vocab_size, spec.max_length, encoder.config)
        width = encoder.config.hidden_size
        if config.finetune == "frozen":
            encoder.requires_grad_(False)
        elif config.finetune == "lora":
            encoder = add_lora(encoder, config.lora)
        self.encoder = encoder
        self.tabular = TabularEncoder(schema, config.embedding_dim)
        self.dropout = nn.Dropout(config.dropout)
        in_dim = width + self.tabular.out_dim
        self.head = Head(in_dim, config.hidden, schema.out_dim, config.activation, config.dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = batch[text_key(self.text_name)]  # (batch, seq)
        mask = (ids != self.pad_id).long()  # (batch, seq)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.config.finetune != "frozen"):
            hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state  # (batch, seq, hidden)
        if self.config.pooling == "cls":
            pooled = hidden[:, 0]  # (batch, hidden)
        else:
            weights = mask[..., None].to(hidden.dtype)  # (batch, seq, 1)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)  # (batch, hidden)
        parts = [self.dropout(pooled)] + [x for x in [self.tabular(batch)] if x is not None]
        return self.head(torch.cat(parts, dim=1))  # (batch, out_dim)

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

import importlib
import json
import warnings
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from modelworks.config.base import Section
from modelworks.data.schema import InputSchema, text_key
from modelworks.errors import UserError
from modelworks.models import MODELS
from modelworks.models.inputs import Head, TabularEncoder, require_only

PACKAGE_PREFIX = "package:"


class LoraSection(Section):
    r: int = Field(8, ge=1, description="rank of the low-rank update")
    alpha: float = Field(16, gt=0, description="scale of the update is alpha / r")
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(
        default_factory=lambda: ["query", "value"],
        min_length=1,
        description="names of the encoder's linear layers to adapt (BERT: query, key, value, dense)",
    )


class PretrainedConfig(Section):
    type: Literal["pretrained"] = "pretrained"
    path: str = Field(
        description="local Hugging Face folder (config.json, model.safetensors, tokenizer.json), or "
        "package:MODULE for the folder that MODULE.get_model_path() returns"
    )
    finetune: Literal["full", "lora", "frozen"] = Field(
        "lora",
        description="lora: small adapters only (suits train.lr around 1e-3); full: every encoder weight "
        "(wants train.lr around 2e-5 to 5e-5); frozen: the encoder as a fixed feature extractor",
    )
    lora: LoraSection = Field(default_factory=LoraSection)
    pooling: Literal["mean", "cls"] = Field("mean", description="mean over real tokens, or the first token")
    hidden: list[int] = Field(default_factory=list, description="widths of the dense layers before the output")
    activation: Literal["relu", "gelu", "tanh", "silu"] = "relu"
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="on the pooled features and in the head")
    embedding_dim: int = Field(8, ge=1, description="per categorical column")
    hf_config: dict[str, Any] | None = Field(
        None, description="the encoder's config.json, recorded by the resolve step; rebuilds it without the folder"
    )
    load_weights: bool = Field(
        True,
        description="read the folder's weights; loading a saved run sets false (architecture from hf_config, "
        "weights from the run)",
    )


# ------------------------------------------------------------------------------------ resolve


def pretrained_folder(config: PretrainedConfig) -> Path:
    """The absolute encoder folder named by ``model.path``; a UserError says what is missing."""
    path = config.path
    if path.startswith(PACKAGE_PREFIX):
        module_name = path[len(PACKAGE_PREFIX) :]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise UserError(
                f"model.path {path!r}: Python package {module_name!r} is not installed; install it "
                f"or point model.path at a local model folder"
            ) from None
        if not hasattr(module, "get_model_path"):
            raise UserError(f"model.path {path!r}: module {module_name!r} has no get_model_path()")
        path = str(module.get_model_path())
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise UserError(f"model.path {config.path!r}: folder {folder} does not exist")
    missing = [f for f in ("config.json", "model.safetensors") if not (folder / f).is_file()]
    if missing:
        raise UserError(
            f"model.path {config.path!r}: folder {folder} lacks {' and '.join(missing)} "
            f"(weights must be in safetensors format; pickled .bin weights are never loaded)"
        )
    return folder


def resolve_pretrained(config: PretrainedConfig) -> PretrainedConfig:
    """A copy of `config` with ``hf_config`` read from the folder's config.json."""
    hf_config = json.loads((pretrained_folder(config) / "config.json").read_text(encoding="utf-8"))
    return config.model_copy(update={"hf_config": hf_config})


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
            raise UserError(f"model.hf_config is not a config.json that transformers can read: {detail}") from None
    if config.load_weights:
        from transformers.utils import logging as hf_logging

        folder = pretrained_folder(config)
        hf_logging.disable_progress_bar()  # our own progress bar speaks for training
        return AutoModel.from_pretrained(folder, config=hf_config, use_safetensors=True, dtype=torch.float32)
    if hf_config is None:
        raise UserError(
            "model.load_weights is false but model.hf_config is empty: the encoder's architecture is "
            "unknown; set load_weights: true (with model.path) or fill hf_config from its config.json"
        )
    return AutoModel.from_config(hf_config, dtype=torch.float32)


def add_lora(encoder: nn.Module, lora: LoraSection) -> nn.Module:
    """Wrap the encoder in peft LoRA adapters; only the adapters remain trainable."""
    from peft import LoraConfig, get_peft_model

    peft_config = LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=list(lora.target_modules)
    )
    try:
        with warnings.catch_warnings():  # peft asks transformers a deprecated question; not ours to fix
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
            return get_peft_model(encoder, peft_config)
    except ValueError as e:
        raise UserError(f"model.lora.target_modules {lora.target_modules} do not fit this encoder: {e}") from None


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


@MODELS.register("pretrained", PretrainedConfig)
class Pretrained(nn.Module):
    def __init__(self, config: PretrainedConfig, schema: InputSchema) -> None:
        super().__init__()
        require_only(schema, "pretrained", {"text"})
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

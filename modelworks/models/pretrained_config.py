"""The pretrained model's config and the resolve step's helpers (torch-free).

`resolve_pretrained` records the encoder folder's ``config.json`` in ``hf_config`` so that a saved
run rebuilds the same architecture without the folder; the model is `modelworks.models.pretrained`.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from modelworks.config.base import Section
from modelworks.errors import UserError

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
    allowed: list[str] | None = Field(
        None, description="when set (the platform sets it for its jobs), path must be one of these; none else is opened"
    )
    load_weights: bool = Field(
        True,
        description="read the folder's weights; loading a saved run sets false (architecture from hf_config, "
        "weights from the run)",
    )


# ------------------------------------------------------------------------------------ resolve


def check_offered(path: str, offered: Sequence[str]) -> None:
    """A `UserError` unless ``model.path`` is one of the `offered` pretrained models (the platform's
    ``pretrained`` setting). Nothing is imported or looked up for a path that is not, and the
    message is the same whatever it names: it tells nothing about the machine."""
    if path not in offered:
        listed = ", ".join(offered) or "none (the platform's pretrained setting is empty)"
        raise UserError(f"model.path {path!r} is not a pretrained model offered here; offered: {listed}")


def pretrained_sections(config: Any) -> Iterator[dict[str, Any]]:
    """Every pretrained model's mapping in a plain job config, wherever it is (a model, a
    distillation's student): each mapping whose type is "pretrained"."""
    if isinstance(config, dict):
        if config.get("type") == "pretrained":
            yield config
        for value in config.values():
            yield from pretrained_sections(value)
    elif isinstance(config, list):
        for value in config:
            yield from pretrained_sections(value)


def searched_paths(config: dict[str, Any]) -> list[str]:
    """The ``model.path`` values a tune section's space may choose."""
    searched = ((config.get("tune") or {}).get("space") or {}).get("model.path")
    values = searched.get("choice", []) if isinstance(searched, dict) else []
    return [str(v) for v in values] if isinstance(values, list) else []


def check_offered_in(config: dict[str, Any], offered: Sequence[str]) -> None:
    """`check_offered` for every pretrained model a plain job config names or its search may choose."""
    for path in [str(s.get("path")) for s in pretrained_sections(config)] + searched_paths(config):
        check_offered(path, offered)


def offer_only(config: Any, offered: Sequence[str]) -> None:
    """Confine every pretrained model of a plain job config to `offered` (``allowed``), in place,
    so that the engine checks it again where it opens the folder."""
    for section in pretrained_sections(config):
        section["allowed"] = list(offered)


def pretrained_folder(config: PretrainedConfig) -> Path:
    """The absolute encoder folder named by ``model.path``; a UserError says what is missing."""
    if config.allowed is not None:
        check_offered(config.path, config.allowed)
    path = config.path
    if path.startswith(PACKAGE_PREFIX):
        module_name = path[len(PACKAGE_PREFIX) :]
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise UserError(
                f"model.path {path!r}: Python package {module_name!r} is not installed; install it "
                f"or point model.path at a local model folder"
            ) from e
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

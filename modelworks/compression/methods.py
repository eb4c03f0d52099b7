"""The compression methods: each one's typed options and where its implementation lives.

This module is light (pydantic, no torch): the job layer checks a compress job's options with
`parse_options` before queuing it, and `load_run` reopens a compressed run through `restore_model`,
both without importing a method's implementation until it is needed. Each method's implementation
is a `modelworks.compression.method.Method` in its own file, declared here by its import path.

A method's facts are declared with it (``entry.meta``): ``needs_float_parent`` (it refuses a
quantized or half-precision parent) and ``makes_float`` (its output is a plain fp32 model that
other methods can take).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from modelworks.config.base import Section
from modelworks.config.load import apply_overrides, validate
from modelworks.config.schema import CompressionRecord, ModelConfig
from modelworks.errors import UserError
from modelworks.registry import Registry
from modelworks.store.files import CONFIG

if TYPE_CHECKING:
    from torch import nn

    from modelworks.compression.method import Method


class MethodOptions(Section):
    """The options of one compression method; `type` is the method's name."""

    def trains(self) -> bool:
        """Whether the method trains a model (and so may want the parent's GPU)."""
        return False


# ------------------------------------------------------------------------------------ quantize


class QuantizeDynamicConfig(MethodOptions):
    type: Literal["quantize-dynamic"] = "quantize-dynamic"
    layers: list[Literal["linear", "lstm", "gru", "embedding"]] = Field(
        default_factory=lambda: ["linear", "lstm", "gru", "embedding"],
        min_length=1,
        description="layer kinds to quantize; embedding: weight-only int8 tables with per-row scales "
        "(nn.Embedding; bag-of-words EmbeddingBag tables stay float)",
    )
    linear_weights: Literal["per_channel", "per_tensor"] = Field(
        "per_channel",
        description="one int8 scale per output neuron (more accurate: BERT-like encoders need it) or per layer",
    )


class QuantizeStaticConfig(MethodOptions):
    type: Literal["quantize-static"] = "quantize-static"
    calibration_batches: int = Field(16, ge=1, description="training batches that set the activation ranges")
    calibration_batch_size: int = Field(32, ge=1)
    seed: int = Field(0, description="which training rows calibrate")


# --------------------------------------------------------------------------------------- prune


class PruneConfig(MethodOptions):
    type: Literal["prune"] = "prune"
    amount: float = Field(
        0.5, gt=0.0, lt=1.0, description="target sparsity: fraction of the pruned layers' weights set to zero"
    )
    structure: Literal["unstructured", "structured"] = Field(
        "unstructured", description="unstructured: single weights, global L1; structured: whole output channels/neurons"
    )
    norm: Literal[1, 2] = Field(2, description="structured: rank channels by their L1 or L2 norm")
    finetune_epochs: int = Field(0, ge=0, description="epochs of training after pruning, masks kept")
    finetune_lr: float | None = Field(None, gt=0.0, description="None: the parent's train.lr")

    def trains(self) -> bool:
        return self.finetune_epochs > 0


# ------------------------------------------------------------------------------------- distill


class DistillConfig(MethodOptions):
    type: Literal["distill"] = "distill"
    student: ModelConfig = Field(  # type: ignore[valid-type]
        description="the student's model section, e.g. {type: mlp, hidden: [32]}"
    )
    temperature: float = Field(2.0, gt=0.0, description="T: softens both models' class probabilities")
    alpha: float = Field(
        0.5, ge=0.0, le=1.0, description="weight of the teacher (soft) term; 1 - alpha weighs the labels"
    )
    epochs: int | None = Field(None, ge=1, description="None: the teacher's train.epochs")
    lr: float | None = Field(None, gt=0.0, description="None: the teacher's train.lr")

    def trains(self) -> bool:
        return True


# ---------------------------------------------------------------------------------------- half


class HalfConfig(MethodOptions):
    type: Literal["half"] = "half"
    dtype: Literal["bf16", "fp16"] = "bf16"
    compute: Literal["auto", "half", "float32"] = Field(
        "auto", description="half: run in dtype; float32: store in dtype, run in fp32; auto: half if the CPU can"
    )


# ------------------------------------------------------------------------------------ registry

COMPRESSORS: Registry[Method] = Registry("compression method")
# In the order `--method` lists them.
COMPRESSORS.declare(
    "quantize-dynamic",
    QuantizeDynamicConfig,
    impl="modelworks.compression.quantize:DYNAMIC",
    needs_float_parent=True,
    makes_float=False,
)
COMPRESSORS.declare(
    "quantize-static",
    QuantizeStaticConfig,
    impl="modelworks.compression.quantize:STATIC",
    needs_float_parent=True,
    makes_float=False,
)
COMPRESSORS.declare(
    "prune", PruneConfig, impl="modelworks.compression.prune:METHOD", needs_float_parent=True, makes_float=True
)
COMPRESSORS.declare(
    "distill", DistillConfig, impl="modelworks.compression.distill:METHOD", needs_float_parent=False, makes_float=True
)
COMPRESSORS.declare(
    "half", HalfConfig, impl="modelworks.compression.half:METHOD", needs_float_parent=True, makes_float=False
)


def parse_options(
    method: str,
    options: Mapping[str, Any] | MethodOptions | None = None,
    overrides: Sequence[str] = (),
    origin: str = "",
) -> MethodOptions:
    """The method's typed options from a mapping (or its options object) plus ``KEY=VALUE`` overrides.

    A bad option is a UserError naming the key and the method (``prune options: ... amout: unknown key``).
    """
    entry = COMPRESSORS.get(method, where="--method")
    where = origin or f"{method} options"
    if isinstance(options, MethodOptions):
        if not isinstance(options, entry.config_cls):
            raise UserError(f"{where}: {type(options).__name__} holds the options of {options.type}, not of {method}")
        if not overrides:
            return options
        options = options.model_dump(mode="json", exclude={"type"})
    raw = apply_overrides(dict(options or {}), list(overrides))
    if "type" in raw:
        raise UserError(f"{where}: 'type' is not an option; the method is given by --method")
    return validate({"type": method, **raw}, where, entry.config_cls)


def parent_refusal(method: str, parent_method: str | None) -> str | None:
    """Why `method` cannot compress a run made by `parent_method` (None: the run was trained), or None."""
    if parent_method is None or not COMPRESSORS.get(method).meta["needs_float_parent"]:
        return None
    if COMPRESSORS.get(parent_method).meta["makes_float"]:
        return None
    return f"it holds a {parent_method} model; {method} needs a float32 model"


def restore_model(model: nn.Module, record: CompressionRecord, weights_path: Path) -> nn.Module:
    """The compressed model of a run: its fp32 architecture `model` rebuilt by the method that made it."""
    where = f"{Path(weights_path).parent / CONFIG}: compression"
    entry = COMPRESSORS.get(record.method, where=f"{where}.method")
    options = parse_options(record.method, record.options, origin=f"{where}.options")
    return entry.impl.reopen(model, options, Path(weights_path))

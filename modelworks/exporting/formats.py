"""The export formats: each one's typed options and where its implementation lives.

Light (pydantic, no torch): the job layer checks an export job's options with `parse_options`
before queuing it. A format's implementation is a function ``(ExportJob) -> FormatRecord`` in its
own file, declared here by its import path and imported on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationError

from modelworks.config.base import Section
from modelworks.errors import UserError
from modelworks.registry import Registry

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    import torch

    from modelworks.data.batches import TensorBatches
    from modelworks.engine.run import Run
    from modelworks.exporting.interface import PositionalModel
    from modelworks.store.export import FormatRecord


class OnnxOptions(Section):
    type: Literal["onnx"] = "onnx"
    opset: int = Field(18, ge=17, le=20, description="ONNX opset version (20 is the exporter's maximum)")
    quantize: Literal["int8"] | None = Field(
        None, description="int8: also write model.int8.onnx (dynamic quantization)"
    )


class TritonOptions(Section):
    type: Literal["triton"] = "triton"
    opset: int = Field(18, ge=17, le=20, description="ONNX opset version of the repository's model")
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]+$", description="model name (default: the run's)")
    max_batch: int = Field(32, ge=1, description="config.pbtxt max_batch_size")
    max_delay_ms: float = Field(5.0, ge=0, description="dynamic batching's max queue delay")


class TorchScriptOptions(Section):
    type: Literal["torchscript"] = "torchscript"


@dataclass
class ExportJob:
    """What a format needs: the model to trace, its example inputs, and the rows to check it on."""

    run: Run
    model: PositionalModel  # on the CPU, eval mode, adapters merged; takes tensors in `names` order
    names: list[str]
    example: tuple[torch.Tensor, ...]  # EXAMPLE_BATCH rows of the check split
    data: TensorBatches  # the check split
    split: str
    reference: np.ndarray  # PyTorch's raw outputs on `data`: (rows, out_dim)
    folder: Path  # where the format writes its files (a staging folder)
    options: Any  # the format's options class


if TYPE_CHECKING:
    ExportFormat = Callable[[ExportJob], FormatRecord]  # writes files into job.folder; returns its export.json fields

FORMATS: Registry[ExportFormat] = Registry("export format")
FORMATS.declare("onnx", OnnxOptions, impl="modelworks.exporting.onnx:export_onnx")
FORMATS.declare("torchscript", TorchScriptOptions, impl="modelworks.exporting.torchscript:export_torchscript")
FORMATS.declare("triton", TritonOptions, impl="modelworks.exporting.triton:export_triton")


def parse_options(format: str, options: Mapping[str, Any] | Section | None = None) -> Section:
    """The format's typed options from a mapping (None values: the format's default), or its
    options object; a bad option is a UserError naming the key and the format."""
    config_cls = FORMATS.get(format, where="--format").config_cls
    if isinstance(options, Section):
        if not isinstance(options, config_cls):
            raise UserError(f"{type(options).__name__} holds options of another format than {format}")
        return options
    values = {k: v for k, v in (options or {}).items() if v is not None}
    if "type" in values:
        raise UserError(f"'type' is not an option of {format} export; the format is given by --format")
    try:
        return config_cls(**values)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            key = err["loc"][0] if err["loc"] else "options"
            if err["type"] == "extra_forbidden":
                known = [k for k in config_cls.model_fields if k != "type"]
                problems.append(
                    f"the {key} option does not apply to {format} export "
                    f"({'its options: ' + ', '.join(known) if known else 'it has no options'})"
                )
            else:
                problems.append(f"the {key} option of {format} export is invalid ({err['msg']}); got {err['input']!r}")
        raise UserError("; ".join(problems)) from e

"""Export a trained run to a portable format, checked against PyTorch before it is published.

    modelworks export RUN --format onnx [--quantize int8] [--opset 18] [--output DIR]
    modelworks.export(run, format="torchscript")

A format is registered in `FORMATS` with its options class (declared beside it, like every other
registry): ``onnx`` (`modelworks.exporting.onnx`) and ``torchscript``
(`modelworks.exporting.torchscript`). Each one writes its model file, runs it over the run's whole test
split and compares the outputs with PyTorch's (`modelworks.exporting.check`); a mismatch is a
UserError, and so is a layer the exporter cannot express (named by `modelworks.exporting.guard`).

The exported model takes positional tensors and returns raw outputs
(`modelworks.exporting.interface`). The export folder, ``RUN/export/<format>/`` by default, holds:

=====================  ========================================================================
file                   holds
=====================  ========================================================================
``model.onnx``         the model (``model.pt`` for TorchScript; plus ``model.int8.onnx`` if asked)
``preprocess.json``    the run's fitted preprocessing state, byte for byte
``inputs.json``        the tensor interface: names, dtypes, shapes, how to build each from raw data
``README.md``          the same, for people
``export.json``        format, versions, the check's result (max diff, rows, passed), quantization
=====================  ========================================================================

The folder is assembled beside its destination and renamed into place, so a reader sees the
previous export or the new one, never a mix.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError
from torch import nn

from modelworks.config.base import Section
from modelworks.data.batches import TensorBatches
from modelworks.errors import UserError
from modelworks.exporting.check import CHECK_BATCH, EXAMPLE_BATCH
from modelworks.exporting.interface import PositionalModel, describe_inputs, input_names, readme
from modelworks.pipeline import Run, load_run
from modelworks.registry import Registry
from modelworks.store import run as store
from modelworks.training.runtime import forward_all

EXPORT_JSON = "export.json"
INPUTS_JSON = "inputs.json"


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
    options: Section


ExportFormat = Callable[[ExportJob], dict[str, Any]]  # writes files into job.folder; returns export.json fields

FORMATS: Registry[ExportFormat] = Registry("export format")


@dataclass
class ExportResult:
    """A published export: its folder, its model file and the export.json record."""

    folder: Path
    file: Path
    record: dict[str, Any]


def export_run(
    run: Run | str | Path,
    format: str,
    *,
    opset: int | None = None,
    quantize: str | None = None,
    output: str | Path | None = None,
) -> ExportResult:
    """Export `run` (a Run, or a run folder or name) to `format`, check it, and publish the folder.

    ``opset`` and ``quantize`` are options of the onnx format; None keeps the format's default.
    ``output`` defaults to ``RUN/export/<format>``.
    """
    entry = FORMATS.get(format, where="--format")
    options = _options(format, entry.config_cls, {"opset": opset, "quantize": quantize})
    run = run if isinstance(run, Run) else load_run(run, device="cpu")
    folder = Path(output) if output is not None else run.path / "export" / format
    _check_destination(folder)
    split, data = _check_split(run)
    model, reference = _export_copy(run.model, data)
    names = input_names(run.schema)
    example = tuple(data.tensors[name][torch.arange(EXAMPLE_BATCH) % len(data)] for name in names)
    staging = Path(tempfile.mkdtemp(dir=_parent(folder), prefix=f".{folder.name}.", suffix=".tmp"))
    try:
        job = ExportJob(run, PositionalModel(model, names), names, example, data, split, reference, staging, options)
        record = {
            "format": format, "run": str(run.path), "model": run.config.model.type, "task": run.schema.task,
            **_with_compression_hint(run, entry.impl, job),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "versions": _versions(),
        }
        _write_companions(run, staging, record)
        _publish(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportResult(folder, folder / record["file"], record)


# ---------------------------------------------------------------------------------- helpers


def _options(format: str, config_cls: type[Section], given: dict[str, Any]) -> Section:
    """The format's options from the non-None values in `given`; a bad one is a UserError."""
    values = {k: v for k, v in given.items() if v is not None}
    try:
        return config_cls(**values)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            key = err["loc"][0] if err["loc"] else "options"
            if err["type"] == "extra_forbidden":
                known = [k for k in config_cls.model_fields if k != "type"]
                problems.append(f"the {key} option does not apply to {format} export "
                                f"({'its options: ' + ', '.join(known) if known else 'it has no options'})")
            else:
                problems.append(f"the {key} option of {format} export is invalid ({err['msg']}); got {err['input']!r}")
        raise UserError("; ".join(problems)) from None


def _check_destination(folder: Path) -> None:
    """Only an export folder (or a new or empty one) may be replaced."""
    if folder.is_file() or (folder.is_dir() and any(folder.iterdir()) and not (folder / EXPORT_JSON).is_file()):
        raise UserError(f"output {folder} exists and is not a modelworks export; give a new or empty folder")


def _parent(folder: Path) -> Path:
    folder.parent.mkdir(parents=True, exist_ok=True)
    return folder.parent


def _check_split(run: Run) -> tuple[str, TensorBatches]:
    """The run's test split, or its evaluation split when the test split is empty."""
    splits = run.splits()
    for name in ("test", run.config.evaluate.split):
        if len(splits.get(name, ())):
            return name, splits[name]
    raise UserError(f"run {run.name} has no test rows to check the export on; set data.split.test above 0")


def _export_copy(model: nn.Module, data: TensorBatches) -> tuple[nn.Module, np.ndarray]:
    """(a CPU float copy of `model` ready to trace, PyTorch's raw outputs on `data` as reference).

    LoRA adapters are merged into the encoder weights: the same function with fewer operations,
    and the check against the unmerged model's outputs proves it.
    """
    model = copy.deepcopy(model).cpu().eval()
    with torch.inference_mode():  # batches as the check's: a dynamically quantized model depends on its batch
        reference = forward_all(model, data, CHECK_BATCH, torch.device("cpu")).numpy()
    for name, child in list(model.named_children()):
        if hasattr(child, "merge_and_unload") and hasattr(child, "peft_config"):  # a peft-wrapped encoder
            setattr(model, name, child.merge_and_unload())
    return model, reference


def _with_compression_hint(run: Run, export: ExportFormat, job: ExportJob) -> dict[str, Any]:
    """`export(job)`; a compressed run's failure says to export its float parent instead."""
    try:
        return export(job)
    except UserError as e:
        compression = run.config.compression
        if compression is None:
            raise
        raise UserError(f"{e}; this run was compressed ({compression.method}): export its parent {compression.parent} "
                        f"instead (ONNX: with --quantize int8 for an int8 model)") from None


def _write_companions(run: Run, folder: Path, record: dict[str, Any]) -> None:
    """preprocess.json (the run's, unchanged), inputs.json, README.md and export.json."""
    shutil.copyfile(run.path / store.PREPROCESS, folder / store.PREPROCESS)
    state = store.read_json(run.path / store.PREPROCESS)["state"]
    description = describe_inputs(run.config, run.schema, state, record["check"].get("free_sequence", True))
    record["inputs"] = [spec["name"] for spec in description["inputs"]]
    record["outputs"] = [description["output"]["name"]]
    store.write_json(folder / INPUTS_JSON, description)
    title = f"{run.name}: {run.config.model.type} on {run.config.data.source}"
    (folder / "README.md").write_text(readme(title, description, record), encoding="utf-8")
    store.write_json(folder / EXPORT_JSON, record)


def _publish(staging: Path, folder: Path) -> None:
    """Move the finished `staging` folder to `folder`, replacing a previous export there."""
    for path in staging.iterdir():  # durable before it becomes visible
        with open(path, "rb") as f:
            os.fsync(f.fileno())
    os.chmod(staging, 0o755)  # mkdtemp makes it private
    previous = None
    if folder.exists():
        previous = folder.with_name(f".{folder.name}.previous-{os.getpid()}")
        os.replace(folder, previous)
    os.replace(staging, folder)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)


def _versions() -> dict[str, str | None]:
    versions = {}
    for name in ("modelworks", "torch", "onnx", "onnxruntime"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


# Registration happens on import.
from modelworks.exporting import onnx  # noqa: E402,F401
from modelworks.exporting import torchscript  # noqa: E402,F401

__all__ = ["EXPORT_JSON", "FORMATS", "ExportJob", "ExportResult", "export_run"]

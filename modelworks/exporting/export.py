"""Export a run: trace its model with a format, check it, and publish the export folder.

The folder is assembled beside its destination and renamed into place, so a reader sees the
previous export or the new one, never a mix.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from modelworks.config.base import Section
from modelworks.data.batches import TensorBatches
from modelworks.engine.run import Run, base_for, load_run
from modelworks.errors import UserError
from modelworks.exporting.check import CHECK_BATCH, EXAMPLE_BATCH
from modelworks.exporting.formats import FORMATS, ExportJob, parse_options
from modelworks.exporting.interface import PositionalModel, describe_inputs, input_names, readme
from modelworks.models.inference import merge_adapters
from modelworks.store import files
from modelworks.store.export import ExportRecord, FormatRecord, InputsDescription, is_export, write_export
from modelworks.training.runtime import forward_all

if TYPE_CHECKING:
    from modelworks.exporting.formats import ExportFormat


@dataclass
class ExportResult:
    """A published export: its folder, its model file and its export.json record."""

    folder: Path
    file: Path
    record: ExportRecord


def export_run(
    run: Run | str | Path,
    format: str,
    options: Section | Mapping[str, Any] | None = None,
    *,
    output: str | Path | None = None,
    base_dir: Path | None = None,
) -> ExportResult:
    """Export `run` (a Run, or a run folder or name under `base_dir`) to `format`, check it, and
    publish the folder.

    `options` are the format's (e.g. onnx: ``{"opset": 18, "quantize": "int8"}``), validated into
    its options class first (`parse_options`; a None value keeps the default). ``output``
    defaults to ``RUN/export/<format>``.
    """
    entry = FORMATS.get(format, where="--format")
    options = parse_options(format, options)
    run = run if isinstance(run, Run) else load_run(run, device="cpu", base_dir=base_for(run, base_dir))
    folder = Path(output) if output is not None else run.path / files.EXPORT_DIR / format
    _check_destination(folder)
    split, data = _check_split(run)
    model, reference = _export_copy(run.model, data)
    names = input_names(run.schema)
    example = tuple(data.tensors[name][torch.arange(EXAMPLE_BATCH) % len(data)] for name in names)
    staging = Path(tempfile.mkdtemp(dir=_parent(folder), prefix=f".{folder.name}.", suffix=".tmp"))
    try:
        job = ExportJob(run, PositionalModel(model, names), names, example, data, split, reference, staging, options)
        made = _with_compression_hint(run, entry.impl, job)
        record = _write_companions(run, staging, format, made)
        _publish(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportResult(folder, folder / record.file, record)


# ---------------------------------------------------------------------------------- helpers


def _check_destination(folder: Path) -> None:
    """Only an export folder (or a new or empty one) may be replaced."""
    if folder.is_file() or (folder.is_dir() and any(folder.iterdir()) and not is_export(folder)):
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
    return merge_adapters(model), reference


def _with_compression_hint(run: Run, export: ExportFormat, job: ExportJob) -> FormatRecord:
    """`export(job)`; a compressed run's failure says to export its float parent instead."""
    try:
        return export(job)
    except UserError as e:
        compression = run.config.compression
        if compression is None:
            raise
        raise UserError(
            f"{e}; this run was compressed ({compression.method}): export its parent {compression.parent} "
            f"instead (ONNX: with --quantize int8 for an int8 model)"
        ) from e


def _write_companions(run: Run, folder: Path, format: str, made: FormatRecord) -> ExportRecord:
    """The run's config.yaml and preprocess.json (unchanged: the folder serves without its run),
    inputs.json, README.md and export.json (with every file's SHA-256); returns the record."""
    for name in (files.CONFIG, files.PREPROCESS):
        shutil.copyfile(run.path / name, folder / name)
    state = run.preprocess.state
    free_sequence = made.check.free_sequence is not False
    description = InputsDescription.model_validate(describe_inputs(run.config, run.schema, state, free_sequence))
    record = ExportRecord(
        format=format,
        run=str(run.path),
        model=run.config.model.type,
        task=run.schema.task,
        **made.model_dump(exclude_unset=True, by_alias=True),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        versions=_versions(),
        inputs=[spec.name for spec in description.inputs],
        outputs=[description.output.name],
    )
    title = f"{run.name}: {run.config.model.type} on {run.config.data.source}"
    (folder / "README.md").write_text(readme(title, description, record), encoding="utf-8")
    return write_export(folder, record, description)


def _publish(staging: Path, folder: Path) -> None:
    """Move the finished `staging` folder to `folder`, replacing a previous export there."""
    for path in staging.rglob("*"):  # durable before it becomes visible
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        else:
            os.chmod(path, 0o755)
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


__all__ = ["ExportResult", "export_run"]

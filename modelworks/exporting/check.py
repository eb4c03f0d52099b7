"""Checking an exported model against PyTorch on the run's own rows.

The exported model runs over every row of the check split in batches of `CHECK_BATCH`, a size
different from the example batch it was traced with, so that the check also proves the batch axis
is free. Its raw outputs must equal PyTorch's (computed over the same batches) within `TOLERANCE`,
as a max absolute difference. Text models run a second time with each batch's padding trimmed:
the sequence axis is declared free only when that matches too. A quantized copy is not expected
to match that closely: its check records the change in the task's main metric and how often its
predictions agree with the float model's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from modelworks.data.batches import TensorBatches
from modelworks.data.schema import TARGET, InputSchema, text_key
from modelworks.errors import UserError
from modelworks.evaluate.metrics import compute_metrics, main_metric
from modelworks.exporting.guard import LayerTracker, python_side_layers
from modelworks.store.export import ExportCheck
from modelworks.training.losses import outputs_to_predictions

if TYPE_CHECKING:
    from modelworks.exporting.formats import ExportJob

TOLERANCE = 1e-4
CHECK_BATCH = 64
EXAMPLE_BATCH = 2  # rows the model is traced with; anything but CHECK_BATCH and 1 (which exporters may freeze)

Runner = Callable[[list[torch.Tensor]], np.ndarray]  # positional inputs of one batch -> raw outputs


def run_batches(
    runner: Runner, data: TensorBatches, names: list[str], trim: dict[str, int] | None = None
) -> np.ndarray:
    """Raw outputs of `runner` over every row of `data`, in order; ValueError on a wrong shape.

    With `trim` ({text input: pad id}), each batch's texts are cut to its longest real text, as a
    client that does not pad to max_length would send them.
    """
    outputs = []
    for batch in data.iterate(CHECK_BATCH):
        for name, pad_id in (trim or {}).items():
            longest = max(int((batch[name] != pad_id).sum(dim=1).max()), 1)
            batch[name] = batch[name][:, :longest]  # (batch, longest)
        out = np.asarray(runner([batch[name] for name in names]), dtype=np.float32)
        rows = len(batch[names[0]])
        if out.ndim != 2 or out.shape[0] != rows:
            raise ValueError(f"it returned outputs of shape {tuple(out.shape)} for a batch of {rows} rows")
        outputs.append(out)
    return np.concatenate(outputs)


def text_pads(schema: InputSchema) -> dict[str, int]:
    """{text input name: pad id}: what `run_batches` trims."""
    return {text_key(name): spec.pad_id for name, spec in schema.text.items()}


def within_tolerance(outputs: np.ndarray, reference: np.ndarray) -> tuple[float | None, bool]:
    """(max absolute difference, whether it is within TOLERANCE); None for outputs of another shape
    or that are not finite."""
    if outputs.shape != reference.shape or not len(reference):
        return None, False
    diff = float(np.abs(outputs - reference).max())
    return (diff, diff <= TOLERANCE) if math.isfinite(diff) else (None, False)


def compare(outputs: np.ndarray, reference: np.ndarray, split: str) -> ExportCheck:
    """The check record: rows, max absolute difference and whether it is within TOLERANCE."""
    diff, passed = within_tolerance(outputs, reference)
    return ExportCheck(
        split=split,
        rows=int(len(reference)),
        batch_size=CHECK_BATCH,
        example_batch_size=EXAMPLE_BATCH,
        max_abs_diff=diff,
        tolerance=TOLERANCE,
        passed=passed,
    )


def verify(kind: str, runner: Runner, job: ExportJob, tracker: LayerTracker) -> ExportCheck:
    """The check record of an exported model; a UserError when it does not run or does not match.

    The error names the layers the tracer saw leave the tensor graph, the usual cause.
    """
    try:
        outputs = run_batches(runner, job.data, job.names)
    except Exception as e:  # noqa: BLE001 - runtimes raise their own types (onnxruntime: InvalidArgument, Fail...)
        raise UserError(
            f"the exported {kind} model does not run on the {job.split} split: "
            f"{' '.join(str(e).split())[:300]}{python_side_layers(tracker)}"
        ) from e
    check = compare(outputs, job.reference, job.split)
    if not check.passed:
        diff = "not measurable" if check.max_abs_diff is None else f"{check.max_abs_diff:.3g}"
        raise UserError(
            f"the exported {kind} model does not match PyTorch on the {job.split} split: max abs difference "
            f"{diff} over {check.rows} rows (tolerance {TOLERANCE:g}){python_side_layers(tracker)}"
        )
    pads = text_pads(job.run.schema)
    if pads:
        try:
            diff, free = within_tolerance(run_batches(runner, job.data, job.names, trim=pads), job.reference)
        except Exception:  # noqa: BLE001 - a graph with a fixed text length refuses shorter texts
            diff, free = None, False
        check.trimmed_max_abs_diff, check.free_sequence = diff, free
    return check


def metric_change(
    schema: InputSchema, data: TensorBatches, reference: np.ndarray, outputs: np.ndarray, threshold: float
) -> dict[str, Any]:  # the metric fields of `modelworks.store.export.Int8Copy`
    """How far `outputs` (e.g. a quantized model's) move the main metric from `reference`'s."""
    name, _ = main_metric(schema.task)
    y = data.tensors[TARGET].numpy()
    before, after = (
        compute_metrics(
            schema.task, y, outputs_to_predictions(schema.task, torch.from_numpy(raw)), schema.class_names, threshold
        )[name]
        for raw in (reference, outputs)
    )
    record: dict[str, Any] = {
        "metric": name,
        "float": before,
        "quantized": after,
        "change": after - before,
        "max_abs_diff": float(np.abs(outputs - reference).max()),
    }
    if schema.task != "regression":
        same = _classes(schema, reference, threshold) == _classes(schema, outputs, threshold)
        record["agreement"] = float(same.mean())  # share of rows predicted as the same class
    return record


def _classes(schema: InputSchema, raw: np.ndarray, threshold: float) -> np.ndarray:
    if schema.task == "multiclass":
        return raw.argmax(1)
    return (1 / (1 + np.exp(-raw[:, 0])) >= threshold).astype(int)

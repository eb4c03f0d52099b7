"""How a compressed run compares with its parent: size on disk, weights, latency, metrics.

Latency is wall time of one forward pass on this machine's CPU (``time.perf_counter``, under
``torch.inference_mode``, the process's thread count for every model), at batch 1 and batch 32
of real test rows. The models take turns, one pass each per iteration after a few warm-up
passes, so that a noisy neighbour or a change of clock speed hits them alike; p50 and p99 are
over `iterations` (at least 30) passes. Metrics are the task's main ones on the test split:
accuracy and f1_macro, or rmse and r2.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.table import Table
from rich.text import Text
from torch import nn
from torch.ao.nn.quantized.dynamic.modules.rnn import RNNBase as QuantizedRNN

from modelworks.data.batches import TensorBatches
from modelworks.data.schema import TARGET
from modelworks.evaluate.metrics import compute_metrics
from modelworks.store import files
from modelworks.store.compression import Comparison, CompressionStats, Latency, MeasuredOn, ModelStats
from modelworks.training.losses import outputs_to_predictions
from modelworks.training.runtime import forward_all

BATCH_SIZES = (1, 32)
MIN_ITERATIONS = 30
WARMUP = 5
MAIN_METRICS = {
    "regression": ("rmse", "r2"),
    "binary": ("accuracy", "f1_macro"),
    "multiclass": ("accuracy", "f1_macro"),
}
_QUANTIZED_MODULES = ("torch.ao.nn.quantized", "torch.ao.nn.intrinsic.quantized")

# ------------------------------------------------------------------------------------ weights


def is_quantized(module: nn.Module) -> bool:
    """Whether `module` is one of torch's int8 layers (or a subclass of one)."""
    return any(c.__module__.startswith(_QUANTIZED_MODULES) for c in type(module).__mro__)


def weight_tensors(model: nn.Module) -> list[torch.Tensor]:
    """Every weight and bias as a float tensor, quantized layers included (their int8 weights
    dequantized); what `count_parameters` counts for a float model."""
    out: list[torch.Tensor] = []
    for m in model.modules():
        if not is_quantized(m):
            out += [p.detach() for p in m._parameters.values() if p is not None]
            continue
        if type(m).__name__.endswith("PackedParams"):  # counted through the layer that owns them
            continue
        if isinstance(m, QuantizedRNN):
            out += [t for group in m._weight_bias().values() for t in group.values() if t is not None]
            continue
        for attr in ("weight", "bias"):
            value = getattr(m, attr, None)
            value = value() if callable(value) else value
            if isinstance(value, torch.Tensor):
                out.append(value)
    return [t.dequantize() if t.is_quantized else t for t in out]


def weight_counts(model: nn.Module) -> tuple[int, int]:
    """(parameters, non-zero parameters)."""
    tensors = weight_tensors(model)
    return sum(t.numel() for t in tensors), sum(int(torch.count_nonzero(t)) for t in tensors)


# ------------------------------------------------------------------------------------ latency


def sample_batch(data: TensorBatches, rows: int) -> dict[str, torch.Tensor]:
    """The first `rows` rows of `data` (repeated when it has fewer), without the target."""
    index = torch.arange(rows) % len(data)
    return {k: v.index_select(0, index) for k, v in data.tensors.items() if k != TARGET}


def latency(
    models: dict[str, nn.Module], batch: dict[str, torch.Tensor], iterations: int = MIN_ITERATIONS
) -> dict[str, dict[str, float]]:
    """{name: {p50_ms, p99_ms, mean_ms}} for one forward pass of each model on `batch`, taking turns."""
    iterations = max(iterations, MIN_ITERATIONS)
    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.inference_mode():
        for step in range(WARMUP + iterations):
            for name, model in models.items():
                start = time.perf_counter()
                model(batch)
                elapsed = time.perf_counter() - start
                if step >= WARMUP:
                    times[name].append(elapsed * 1000)
    return {
        name: {
            "p50_ms": float(np.percentile(t, 50)),
            "p99_ms": float(np.percentile(t, 99)),
            "mean_ms": float(np.mean(t)),
        }
        for name, t in times.items()
    }


# ------------------------------------------------------------------------------------ metrics


def test_split(splits: dict[str, TensorBatches], config) -> TensorBatches:
    """The test split, or the run's evaluation split when it has no test rows."""
    return splits["test"] if len(splits.get("test", ())) else splits[config.evaluate.split]


def model_metrics(model: nn.Module, run, data: TensorBatches) -> dict[str, Any]:
    """All metrics of `model` (any model with `run`'s inputs) on `data`, on the CPU."""
    schema = run.schema
    raw = forward_all(model, data, run.config.evaluate.batch_size, torch.device("cpu"))
    return compute_metrics(
        schema.task,
        data.tensors[TARGET].numpy(),
        outputs_to_predictions(schema.task, raw),
        schema.class_names,
        run.config.evaluate.threshold,
    )


def main_metrics(task: str, metrics: dict[str, Any]) -> dict[str, float | None]:
    """The task's main metrics; None for one that could not be computed (NaN)."""
    values = {k: metrics.get(k) for k in MAIN_METRICS[task]}
    return {k: None if v is None or not math.isfinite(v) else float(v) for k, v in values.items()}


# ------------------------------------------------------------------------------------ compare


def describe(run, model: nn.Module, data: TensorBatches, timing: dict[str, Latency]) -> ModelStats:
    parameters, nonzero = weight_counts(model)
    return ModelStats(
        run=str(run.path),
        size_bytes=(Path(run.path) / files.WEIGHTS).stat().st_size,
        parameters=parameters,
        nonzero=nonzero,
        latency_ms=timing,
        metrics=main_metrics(run.schema.task, model_metrics(model, run, data)),
    )


def compare(parent, child, splits: dict[str, TensorBatches], iterations: int = MIN_ITERATIONS) -> Comparison:
    """The comparison stored in compression.json: both runs described, and the changes."""
    data = test_split(splits, parent.config)
    timing = {
        f"batch_{n}": latency({"parent": parent.model, "compressed": child.model}, sample_batch(data, n), iterations)
        for n in BATCH_SIZES
    }
    before = describe(parent, parent.model, data, {k: Latency(**v["parent"]) for k, v in timing.items()})
    after = describe(child, child.model, data, {k: Latency(**v["compressed"]) for k, v in timing.items()})
    change: dict[str, float | None] = {
        "size_ratio": before.size_bytes / after.size_bytes,
        **{f"speedup_{k}": before.latency_ms[k].p50_ms / after.latency_ms[k].p50_ms for k in timing},
    }
    for name, value in after.metrics.items():
        old = before.metrics[name]
        change[name] = None if value is None or old is None else value - old
    evaluated_on = "test" if data is splits.get("test") else parent.config.evaluate.split
    measured_on = MeasuredOn(
        device="cpu",
        threads=torch.get_num_threads(),
        iterations=max(iterations, MIN_ITERATIONS),
        evaluated_on=evaluated_on,
    )
    return Comparison(measured_on=measured_on, parent_stats=before, compressed=after, change=change)


def comparison_table(result: CompressionStats) -> Table:
    """compression.json as a rich table: parent, compressed, change."""
    before, after, change = result.parent_stats, result.compressed, result.change
    table = Table(title=f"{result.method}: {Path(after.run).name} vs its parent {Path(before.run).name}")
    for name, justify in (("", "left"), ("parent", "right"), ("compressed", "right"), ("change", "right")):
        table.add_column(name, justify=justify)
    table.add_row(
        "size on disk", _bytes(before.size_bytes), _bytes(after.size_bytes), f"{change['size_ratio']:.2f}x smaller"
    )
    table.add_row("parameters", f"{before.parameters:,}", f"{after.parameters:,}", "")
    table.add_row(
        "non-zero",
        f"{before.nonzero:,}",
        f"{after.nonzero:,}",
        f"{1 - after.nonzero / max(1, after.parameters):.1%} zeros",
        end_section=True,
    )
    for key in before.latency_ms:
        b, a = before.latency_ms[key], after.latency_ms[key]
        speedup = change[f"speedup_{key}"]
        label = f"{speedup:.2f}x faster" if speedup >= 1 else f"{1 / speedup:.2f}x slower"
        size = key.removeprefix("batch_")
        table.add_row(
            f"latency p50, batch {size}",
            f"{b.p50_ms:.3g} ms",
            f"{a.p50_ms:.3g} ms",
            Text(label, style="green" if speedup >= 1 else "red"),
        )
        table.add_row(f"latency p99, batch {size}", f"{b.p99_ms:.3g} ms", f"{a.p99_ms:.3g} ms", "")
    table.rows[-1].end_section = True
    for name, value in after.metrics.items():
        old, delta = before.metrics[name], change[name]
        table.add_row(
            f"{name} ({result.measured_on.evaluated_on})",
            _num(old),
            _num(value),
            "-" if delta is None else f"{delta:+.4f}",
        )
    return table


def _bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"

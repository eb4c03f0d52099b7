"""compression.json: a compressed run's comparison with its parent, declared once.

`modelworks.compression` writes it with `write_compression`; the command line, the job worker and
the tests read it with `read_compression`. Nothing else opens the file. Numbers that cannot be
computed (a metric of an empty split) are null, never NaN: the file is strict JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from modelworks.errors import UserError
from modelworks.store.atomic import atomic_write_text
from modelworks.store.files import COMPRESSION_JSON


class Record(BaseModel):
    """A typed artifact record: unknown keys are errors, NaN and infinity are written as null."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="null")


class Latency(Record):
    """Wall time of one forward pass, in milliseconds, over the measured iterations."""

    p50_ms: float
    p99_ms: float
    mean_ms: float


class ModelStats(Record):
    """One side of the comparison: a run's model as stored and as measured."""

    run: str
    size_bytes: int  # model.safetensors on disk
    parameters: int
    nonzero: int
    latency_ms: dict[str, Latency]  # {"batch_1": ..., "batch_32": ...}
    metrics: dict[str, float | None]  # the task's main metrics on the evaluated split


class MeasuredOn(Record):
    device: str
    threads: int
    iterations: int
    evaluated_on: str  # the split the metrics come from


class Comparison(Record):
    """Parent and compressed model side by side, and what changed: ``size_ratio``, ``speedup_batch_N``
    (parent time / compressed time at p50) and each main metric's difference (compressed - parent)."""

    measured_on: MeasuredOn
    parent_stats: ModelStats
    compressed: ModelStats
    change: dict[str, float | None]


class LineageStep(Record):
    run: str
    method: str | None  # None: the original training run
    missing: bool = False  # the folder is gone; the chain stops there


class CompressionStats(Comparison):
    """compression.json: how a run was compressed from its parent, and the comparison of the two."""

    method: str
    parent: str  # the parent run's folder, resolved
    options: dict[str, Any]  # the method's options, every automatic choice resolved
    lineage: list[LineageStep]  # root first
    notes: dict[str, Any]  # facts the method reports (int8 layers, sparsity, storage, ...)


def write_compression(run_dir: Path, stats: CompressionStats) -> None:
    atomic_write_text(Path(run_dir) / COMPRESSION_JSON, stats.model_dump_json(indent=2) + "\n")


def read_compression(run_dir: Path) -> CompressionStats:
    """The compression.json of `run_dir`; a UserError when it is missing or not one."""
    path = Path(run_dir) / COMPRESSION_JSON
    try:
        return CompressionStats.model_validate_json(path.read_bytes())
    except FileNotFoundError as e:
        raise UserError(f"{Path(run_dir)} has no {COMPRESSION_JSON}: it is not a compressed run") from e
    except ValidationError as e:
        raise UserError(f"{path} is not a compression record: {e.errors()[0]['msg']}") from e

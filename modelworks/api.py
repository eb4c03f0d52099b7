"""The public facade: what the CLI, the tests, the server and the job workers call.

    run = modelworks.train("exp.yaml", overrides=["train.lr=0.003"])
    run.evaluate()                      # metrics on the test split
    run.predict(frame, proba=True)      # a DataFrame of predictions
    run = modelworks.load_run("runs/exp-20261123-101500")
    result = modelworks.tune("exp.yaml", trials=30, parallel=2)
    small = modelworks.compress(run, "quantize-dynamic")
    onnx = modelworks.export(run, "onnx", quantize="int8")
    checked = modelworks.api.check_job_config("tune", config)   # before a job is queued
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelworks.errors import UserError
from modelworks.job_kinds import JOB_KINDS, CheckedJob, FindSource, SourceJob
from modelworks.pipeline import Run, cross_validate, load_run, train
from modelworks.training.callbacks import Callback, TrainState
from modelworks.tuning.results import TuneResult
from modelworks.tuning.study import SearchInterrupted, tune
from modelworks.tuning.workers import TrialRecord

if TYPE_CHECKING:
    from modelworks.exporting import ExportResult

__all__ = [
    "Callback", "CheckedJob", "FindSource", "Run", "SearchInterrupted", "SourceJob", "TrainState", "TrialRecord",
    "TuneResult", "check_job_config", "compress", "cross_validate", "export", "load_run", "train", "tune",
]


def check_job_config(kind: str, config: Mapping[str, Any], *, find_source: FindSource | None = None) -> CheckedJob:
    """Check a platform job's config before it is queued: the one check of each job kind, for the
    CLI's ``--remote``, the server and the job layer alike (`modelworks.job_kinds`).

        checked = modelworks.api.check_job_config("tune", yaml.safe_load(text))
        checked.config, checked.gpus

    Returns the config to store (validated, normalized) and the GPUs the job needs. A job that
    starts from another job's run (evaluate, compress, export) names it by id; `find_source`,
    given by the platform, looks it up (``(job id, kinds it may be) -> SourceJob``), and the
    checks that need it run too (a compression method that needs a float32 model, the device a
    fine-tuning method trains on). Every problem is a `UserError` that names the key.
    """
    if kind not in JOB_KINDS:
        raise UserError(f"kind must be one of {', '.join(e.name for e in JOB_KINDS)}; got {kind!r}")
    return JOB_KINDS.get(kind).meta["check"](dict(config), find_source)


def compress(run: "Run | str | Path", method: str, /, *, overrides: Sequence[str] = (), progress: bool = False, **options: Any) -> Run:
    """Compress a trained run with `method`; returns the new run, which records its parent.

        modelworks.compress("runs/cnn-20261123-101500", "prune", amount=0.5, finetune_epochs=2)
        modelworks.compress(run, "distill", student={"type": "mlp", "hidden": [32]}, temperature=4)

    Methods: quantize-dynamic, quantize-static, prune, distill, half (`modelworks.compression`). The
    comparison with the parent (size, weights, latency, metrics) is in ``run.path/compression.json``.
    """
    from modelworks.compression import compress_run

    return compress_run(run.path if isinstance(run, Run) else run, method, options, overrides, progress=progress)


def export(
    run: "Run | str | Path",
    format: str = "onnx",
    *,
    opset: int | None = None,
    quantize: str | None = None,
    output: str | Path | None = None,
) -> "ExportResult":
    """Export a trained run to ONNX or TorchScript, checked against PyTorch on its test split.

        result = modelworks.export("runs/cnn-20261123-101500", "onnx", quantize="int8")
        result.file                     # runs/cnn-.../export/onnx/model.onnx
        result.record["check"]          # {"max_abs_diff": 3e-07, "rows": 360, "passed": True, ...}

    Writes ``RUN/export/<format>/`` (or `output`): the model, preprocess.json, inputs.json (the
    tensor interface), README.md and export.json. See `modelworks.exporting`.
    """
    from modelworks.exporting import export_run

    return export_run(run, format, opset=opset, quantize=quantize, output=output)

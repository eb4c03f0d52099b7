"""The public facade: what the CLI, the tests, the server and the job workers call.

    run = modelworks.train("exp.yaml", overrides=["train.lr=0.003"])
    run.evaluate()                      # metrics on the test split
    run.predict(frame, proba=True)      # a DataFrame of predictions
    run = modelworks.load_run("runs/exp-20261123-101500")
    result = modelworks.tune("exp.yaml", trials=30, parallel=2)
    small = modelworks.compress(run, "quantize-dynamic")
    onnx = modelworks.export(run, "onnx", {"quantize": "int8"})
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Sequence

from modelworks.compression.compress import compress_run
from modelworks.compression.methods import MethodOptions
from modelworks.compression.methods import parse_options as compression_options
from modelworks.config.base import Section
from modelworks.errors import UserError
from modelworks.exporting.export import ExportResult, export_run
from modelworks.exporting.formats import parse_options as export_options
from modelworks.pipeline import Run, cross_validate, load_run, train
from modelworks.tuning import TuneResult, tune

__all__ = ["Run", "TuneResult", "compress", "cross_validate", "export", "load_run", "train", "tune"]


def compress(
    run: "Run | str | Path",
    method: str,
    /,
    options: "MethodOptions | Mapping[str, Any] | None" = None,
    *,
    overrides: Sequence[str] = (),
    progress: bool = False,
    **option_values: Any,
) -> Run:
    """Compress a trained run with `method`; returns the new run, which records its parent.

        modelworks.compress("runs/cnn-20261123-101500", "prune", {"amount": 0.5, "finetune_epochs": 2})
        modelworks.compress(run, "distill", student={"type": "mlp", "hidden": [32]}, temperature=4)

    The options (a mapping, the method's options object, or keywords; ``overrides`` are
    ``KEY.PATH=VALUE`` strings on top) are validated into the method's options class before
    anything runs: a bad one is a UserError naming the key and the method. Methods:
    quantize-dynamic, quantize-static, prune, distill, half (`modelworks.compression`). The
    comparison with the parent (size, weights, latency, metrics) is in ``run.path/compression.json``
    (`modelworks.store.compression.read_compression`).
    """
    cfg = compression_options(method, _merged(options, option_values), overrides)
    return compress_run(run.path if isinstance(run, Run) else run, method, cfg, progress=progress)


def export(
    run: "Run | str | Path",
    format: str = "onnx",
    options: "Section | Mapping[str, Any] | None" = None,
    *,
    output: str | Path | None = None,
    **option_values: Any,
) -> ExportResult:
    """Export a trained run to ONNX or TorchScript, checked against PyTorch on its test split.

        result = modelworks.export("runs/cnn-20261123-101500", "onnx", quantize="int8")
        result.file                     # runs/cnn-.../export/onnx/model.onnx
        result.record.check             # max_abs_diff=3e-07, rows=360, passed=True, ...

    The format's options (a mapping, its options object, or keywords such as ``opset=18``; a None
    value keeps the default) are validated first: a bad one is a UserError naming the key and the
    format. Writes ``RUN/export/<format>/`` (or `output`): the model, preprocess.json, inputs.json
    (the tensor interface), README.md and export.json (`modelworks.store.export`). See
    `modelworks.exporting`.
    """
    cfg = export_options(format, _merged(options, option_values))
    return export_run(run, format, cfg, output=output)


def _merged(options: "Section | Mapping[str, Any] | None", option_values: dict[str, Any]) -> Any:
    """Options given as a mapping or an options object, plus keyword options."""
    if not option_values:
        return options
    if isinstance(options, Section):
        raise UserError(f"give options either as {type(options).__name__} or as keywords, not both")
    return {**(options or {}), **option_values}

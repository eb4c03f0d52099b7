"""The public facade: what the CLI, the tests, the server and the job workers call.

    run = modelworks.train("exp.yaml", overrides=["train.lr=0.003"])
    run.evaluate()                      # metrics on the test split
    run.predict(frame, proba=True)      # a DataFrame of predictions
    run = modelworks.load_run("runs/exp-20261123-101500")
    result = modelworks.tune("exp.yaml", trials=30, parallel=2)
    small = modelworks.compress(run, "quantize-dynamic")
    onnx = modelworks.export(run, "onnx", quantize="int8")
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from modelworks.config.schema import ExperimentConfig
from modelworks.engine import run as _run
from modelworks.engine import train as _train
from modelworks.engine.cv import cross_validate
from modelworks.engine.run import Run
from modelworks.store.run import RUNS_DIR, StoredRun
from modelworks.training.callbacks import Callback
from modelworks.tuning import TuneResult, tune

if TYPE_CHECKING:
    from modelworks.exporting import ExportResult

__all__ = ["Run", "StoredRun", "TuneResult", "compress", "cross_validate", "export", "load_run", "train", "tune"]


def train(
    config: ExperimentConfig | str | Path | dict,
    *,
    overrides: Sequence[str] = (),
    resume: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool | None = None,
    base_dir: str | Path | None = None,
) -> Run | None:
    """Train a model from an experiment (a YAML file, a dict or an `ExperimentConfig`); returns
    the finished `Run` (None on non-zero data-parallel ranks). With `resume`, continues that run.

    Relative paths (the config file, `resume`, `runs_dir`, and the data paths of a config given
    as a dict or object) start from `base_dir`, by default the current directory; a config
    file's own data paths start from its folder.
    """
    base = Path.cwd() if base_dir is None else Path(base_dir)
    return _train.train(
        config, base_dir=base, overrides=overrides, resume=resume, callbacks=callbacks, progress=progress
    )


def load_run(
    ref: str | Path,
    runs_dir: str | Path = RUNS_DIR,
    device: str | None = None,
    *,
    source: str | None = None,
    base_dir: str | Path | None = None,
) -> Run:
    """Open a run folder (a path, or a name under `runs_dir`) with its model, to evaluate and predict.

    `source` reads the run's data from there instead of the file its config names (a run moved
    to another machine). Relative paths, and data files given to the run later, start from
    `base_dir`, by default the current directory. To read a run's files without loading its
    model (or torch), use `StoredRun(path)`.
    """
    base = Path.cwd() if base_dir is None else Path(base_dir)
    return _run.load_run(ref, runs_dir, device, source=source, base_dir=base)


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

"""The public facade: what the CLI, the tests, the server and the job workers call.

run = modelworks.train("exp.yaml", overrides=["train.lr=0.003"])
run.evaluate()                      # metrics on the test split
run.predict(frame, proba=True)      # a DataFrame of predictions
run = modelworks.load_run("runs/exp-20261123-101500")
result = modelworks.tune("exp.yaml", trials=30, parallel=2)
small = modelworks.compress(run, "quantize-dynamic")
onnx = modelworks.export(run, "onnx", {"quantize": "int8"})
checked = modelworks.api.check_job_config("tune", config)   # before a job is queued
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelworks.config.base import Section
from modelworks.config.schema import ExperimentConfig
from modelworks.engine import run as _run
from modelworks.engine import train as _train
from modelworks.engine.cv import cross_validate
from modelworks.engine.run import Run
from modelworks.errors import UserError
from modelworks.store.run import RUNS_DIR, StoredRun
from modelworks.training.callbacks import Callback, TrainState

if TYPE_CHECKING:
    from modelworks.compression.methods import MethodOptions
    from modelworks.exporting.export import ExportResult
    from modelworks.job_kinds import CheckedJob, FindSource, SourceJob
    from modelworks.tuning.results import TuneResult
    from modelworks.tuning.study import SearchInterrupted
    from modelworks.tuning.workers import TrialCallback, TrialRecord

# Names of the stages a plain training run does not use, imported on first use (tuning imports
# optuna, compression and export their own libraries): `modelworks.api.TuneResult` still works.
_LAZY = {
    "CheckedJob": "modelworks.job_kinds", "FindSource": "modelworks.job_kinds", "SourceJob": "modelworks.job_kinds",
    "SearchInterrupted": "modelworks.tuning.study", "TuneResult": "modelworks.tuning.results",
    "TrialRecord": "modelworks.tuning.workers", "TrialCallback": "modelworks.tuning.workers",
    "ExportResult": "modelworks.exporting.export", "MethodOptions": "modelworks.compression.methods",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'modelworks.api' has no attribute {name!r}")


__all__ = [
    "Callback",
    "CheckedJob",
    "FindSource",
    "Run",
    "SearchInterrupted",
    "SourceJob",
    "StoredRun",
    "TrainState",
    "TrialRecord",
    "TuneResult",
    "check_job_config",
    "compress",
    "cross_validate",
    "export",
    "load_run",
    "train",
    "tune",
]


def check_job_config(
    kind: str,
    config: Mapping[str, Any],
    *,
    find_source: FindSource | None = None,
    pretrained: Sequence[str] | None = None,
) -> CheckedJob:
    """Check a platform job's config before it is queued: the one check of each job kind, for the
    CLI's ``--remote``, the server and the job layer alike (`modelworks.job_kinds`).

        checked = modelworks.api.check_job_config("tune", yaml.safe_load(text))
        checked.config, checked.gpus

    Returns the config to store (validated, normalized) and the GPUs the job needs. A job that
    starts from another job's run (evaluate, compress, export) names it by id; `find_source`,
    given by the platform, looks it up (``(job id, kinds it may be) -> SourceJob``), and the
    checks that need it run too (a compression method that needs a float32 model, the device a
    fine-tuning method trains on). Every problem is a `UserError` that names the key.
    `pretrained`, given by the platform (its ``pretrained`` setting), lists the only pretrained
    models a job may name (as ``model.path``, a student's ``path`` or a searched ``model.path``).
    """
    from modelworks.job_kinds import JOB_KINDS
    from modelworks.models.pretrained_config import check_offered_in

    if kind not in JOB_KINDS:
        raise UserError(f"kind must be one of {', '.join(e.name for e in JOB_KINDS)}; got {kind!r}")
    if pretrained is not None:
        check_offered_in(dict(config), pretrained)
    return JOB_KINDS.get(kind).meta["check"](dict(config), find_source)


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
    base = _base(base_dir)
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
    data_root: str | Path | None = None,
) -> Run:
    """Open a run folder (a path, or a name under `runs_dir`) with its model, to evaluate and predict.

    `source` reads the run's data from there instead of the file its config names (a run moved
    to another machine); its data paths must then stay inside `data_root` when given (``data.root``,
    as the platform's jobs confine them), whatever root the run was trained with. Relative paths,
    and data files given to the run later, start from
    `base_dir`, by default the current directory. To read a run's files without loading its
    model (or torch), use `StoredRun(path)`.
    """
    base = _base(base_dir)
    return _run.load_run(ref, runs_dir, device, source=source, base_dir=base, data_root=data_root)


def compress(
    run: Run | str | Path,
    method: str,
    /,
    options: MethodOptions | Mapping[str, Any] | None = None,
    *,
    overrides: Sequence[str] = (),
    progress: bool = False,
    base_dir: str | Path | None = None,
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
    from modelworks.compression.compress import compress_run
    from modelworks.compression.methods import parse_options as compression_options

    cfg = compression_options(method, _merged(options, option_values), overrides)
    base = _base(base_dir)
    return compress_run(run.path if isinstance(run, Run) else run, method, cfg, progress=progress, base_dir=base)


def export(
    run: Run | str | Path,
    format: str = "onnx",
    options: Section | Mapping[str, Any] | None = None,
    *,
    output: str | Path | None = None,
    base_dir: str | Path | None = None,
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
    from modelworks.exporting.export import export_run
    from modelworks.exporting.formats import parse_options as export_options

    cfg = export_options(format, _merged(options, option_values))
    base = _base(base_dir)
    return export_run(run, format, cfg, output=(base / output) if output is not None else None, base_dir=base)


def _merged(options: Section | Mapping[str, Any] | None, option_values: dict[str, Any]) -> Any:
    """Options given as a mapping or an options object, plus keyword options."""
    if not option_values:
        return options
    if isinstance(options, Section):
        raise UserError(f"give options either as {type(options).__name__} or as keywords, not both")
    return {**(options or {}), **option_values}


def tune(
    config: ExperimentConfig | str | Path | dict | None = None,
    *,
    trials: int | None = None,
    parallel: int | None = None,
    timeout: float | None = None,
    overrides: Sequence[str] = (),
    study: str | Path | None = None,
    resume: str | Path | None = None,
    progress: bool = False,
    callbacks: Sequence[TrialCallback] = (),
    base_dir: str | Path | None = None,
) -> TuneResult:
    """Search the experiment's ``tune.space``; returns the best params, value, run and config
    (`modelworks.tuning.study.tune` says what each option does).

        result = modelworks.tune("exp.yaml", trials=30, parallel=2, callbacks=[print])

    Each of `callbacks` gets a `TrialRecord` per finished trial. Relative paths start from
    `base_dir`, by default the current directory.
    """
    from modelworks.tuning import study as _study

    base = _base(base_dir)
    return _study.tune(
        config,
        trials=trials,
        parallel=parallel,
        timeout=timeout,
        overrides=overrides,
        study=study,
        resume=resume,
        progress=progress,
        callbacks=callbacks,
        base_dir=base,
    )


def _base(base_dir: str | Path | None) -> Path:
    """The folder relative paths start from: the caller's, or else the current directory (the one
    place the engine consults it)."""
    return Path.cwd() if base_dir is None else Path(base_dir)

"""Compress a run: make the new run with a method, store it, and compare it with its parent.

`compress_run` writes the new run next to the parent (``PARENT-METHOD-DATE``): ``config.yaml``
(the parent's config, the student's model section for distill, and the ``compression`` record:
method, parent folder, resolved options), ``model.safetensors`` (no pickle; see `storage`),
``preprocess.json`` (copied), ``report.json/html`` and ``compression.json``
(`modelworks.store.compression`), the comparison with the parent from `measure`.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from modelworks.compression.measure import compare
from modelworks.compression.method import Compressed, Job
from modelworks.compression.methods import COMPRESSORS, MethodOptions, parent_refusal, parse_options
from modelworks.compression.storage import write_weights
from modelworks.config.load import read_yaml, validate
from modelworks.config.schema import CompressionRecord, ExperimentConfig
from modelworks.data.batches import TensorBatches
from modelworks.engine.run import Run, base_for, load_run
from modelworks.errors import UserError
from modelworks.evaluate.metrics import main_metric
from modelworks.store import files
from modelworks.store import run as store
from modelworks.store.compression import CompressionStats, LineageStep, write_compression
from modelworks.store.environment import Environment, write_environment
from modelworks.store.report import Baselines
from modelworks.training.callbacks import Callback, ProgressBar


def compress_run(
    run: str | Path,
    method: str,
    options: MethodOptions | Mapping[str, Any] | None = None,
    *,
    runs_dir: str | Path = "runs",
    progress: bool = False,
    callbacks: Sequence[Callback] = (),
    iterations: int = 30,
    base_dir: Path | None = None,
) -> Run:
    """Compress the run `run` with `method` and its `options`; returns the new `Run`. See the module docstring.

    `options` are validated into the method's options class first (`parse_options`). `progress`
    shows a progress bar while a method trains (prune fine-tuning, distill); `iterations` is the
    number of timed forward passes per model and batch size (at least 30). A relative `run` or
    `runs_dir` starts from `base_dir`.
    """
    entry = COMPRESSORS.get(method, where="--method")
    cfg = parse_options(method, options)
    base_dir = base_for(run, base_dir)
    parent = load_run(run, runs_dir, device="cpu", base_dir=base_dir)
    record = parent.config.compression
    refusal = parent_refusal(method, record.method if record else None)
    if refusal is not None:
        raise UserError(f"run {parent.name}: {refusal}: compress its parent {record.parent} instead")
    frames = parent.frames()
    splits = parent.splits(frames)
    if progress:
        callbacks = [ProgressBar(main_metric(parent.schema.task)[0]), *callbacks]
    run_dir = store.create_run_dir(parent.path.parent, f"{parent.name}-{method}")
    try:
        result = entry.impl.apply(Job(parent, splits, run_dir, list(callbacks)), cfg)
        config = _child_config(parent.path, method, result)
        store.write_config(run_dir, config)
        shutil.copyfile(parent.path / files.PREPROCESS, run_dir / files.PREPROCESS)
        write_environment(run_dir, Environment.capture("cpu"))
        storage = write_weights(run_dir / files.WEIGHTS, result.tensors, result.meta)
        child = Run(run_dir, config, parent.preprocessor, result.model.eval(), torch.device("cpu"), base_dir=base_dir)
        comparison = compare(parent, child, splits, iterations=iterations)
        child.save_report(
            splits,
            child.history,
            extra={
                "compression": method,
                "parent": parent.name,
                "parameters": comparison.compressed.parameters,
            },
            frames=frames,
            fitted=_parents_baselines(parent, child, splits),
        )
        write_compression(
            run_dir,
            CompressionStats(
                method=method,
                parent=str(parent.path.resolve()),
                options=_options_json(result.options),
                lineage=lineage(run_dir),
                notes={**result.notes, "storage": storage},
                **dict(comparison),
            ),
        )
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)  # a half-made run would only confuse `find_run`
        raise
    return child


def _parents_baselines(parent: Run, child: Run, splits: dict[str, TensorBatches]) -> tuple[Baselines | None, str]:
    """The parent's baselines, when its report scored them on the rows the child is evaluated on
    (the same split, as many rows, the same baselines), else None (fit them again on the parent's
    training split); and a note that says which."""
    split = child.config.evaluate.split
    refit = None, f"refitted on the training split of the parent run {parent.name}, scored on the same {split} rows"
    try:
        report = parent.report if parent.has_report else None
    except Exception:  # noqa: BLE001  an unreadable parent report only means fitting them again
        report = None
    if report is None or report.baselines is None or report.baselines.margin is None:
        return refit
    rows = (report.extra.model_extra or {}).get(f"{split}_rows")
    same = [r.name for r in report.baselines.results] == list(child.config.evaluate.baselines)
    if report.extra.evaluated_on != split or split not in splits or rows != len(splits[split]) or not same:
        return refit
    return report.baselines, f"reused from the parent run {parent.name} (same {rows} {split} rows, not refitted)"


def lineage(path: Path) -> list[LineageStep]:
    """The chain of runs from the original training run to `path`, root first."""
    chain = []
    seen = set()
    current: Path | None = Path(path)
    while current is not None and current.resolve() not in seen:
        seen.add(current.resolve())
        if not (current / files.CONFIG).exists():
            chain.append(LineageStep(run=str(current), method=None, missing=True))
            break
        raw = read_yaml(current / files.CONFIG).get("compression")
        record = validate(raw, f"{current / files.CONFIG}: compression", CompressionRecord) if raw else None
        chain.append(LineageStep(run=str(current), method=record.method if record else None))
        current = Path(record.parent) if record else None
    return chain[::-1]


def _options_json(options: MethodOptions) -> dict[str, Any]:
    return options.model_dump(mode="json", exclude={"type"})


def _child_config(parent_dir: Path, method: str, result: Compressed) -> ExperimentConfig:
    """The parent's stored config + the compression record (+ the student's model section)."""
    raw = read_yaml(parent_dir / files.CONFIG)
    if result.model_config is not None:
        raw["model"] = result.model_config.model_dump(mode="json")
    raw["train"] = {**raw.get("train", {}), **result.train}
    raw["compression"] = {
        "method": method,
        "parent": str(parent_dir.resolve()),
        "options": _options_json(result.options),
    }
    return validate(raw, "compressed run config")

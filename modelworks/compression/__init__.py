"""Model compression: each method turns a trained run into a new, smaller or faster run.

    modelworks compress runs/cnn-20261123-101500 --method prune --set amount=0.5 --set finetune_epochs=2

A method is registered in `COMPRESSORS` as (options class, `Method`) in its own file:
``quantize.py`` (quantize-dynamic, quantize-static), ``prune.py``, ``distill.py``, ``half.py``.
`Method.apply` makes the compressed model from the parent run; `Method.restore` rebuilds it from
the freshly built fp32 architecture and the stored tensors, which is how `load_run` reopens a
compressed run (`restore_model`).

`compress_run` writes the new run next to the parent (``PARENT-METHOD-DATE``): ``config.yaml``
(the parent's config, the student's model section for distill, and the ``compression`` record:
method, parent folder, resolved options), ``model.safetensors`` (no pickle; see `storage`),
``preprocess.json`` (copied), ``report.json/html`` and ``compression.json``, the comparison
with the parent from `measure`.
"""

from __future__ import annotations

import copy
import shutil
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import yaml
from torch import nn

from modelworks.config.base import Section
from modelworks.config.load import apply_overrides, read_yaml, validate
from modelworks.config.schema import CheckpointConfig, CompressionRecord, TrainConfig
from modelworks.data.batches import TensorBatches
from modelworks.data.schema import TARGET
from modelworks.errors import UserError
from modelworks.registry import Registry
from modelworks.store import run as store
from modelworks.store.atomic import atomic_write_text
from modelworks.evaluate.metrics import main_metric
from modelworks.training.callbacks import Callback, ProgressBar

COMPRESSION_JSON = "compression.json"


@dataclass
class Job:
    """What a method works from: the parent run (model on the CPU, in eval mode) and its data."""

    parent: Any  # modelworks.pipeline.Run
    splits: dict[str, TensorBatches]
    run_dir: Path  # the new run's folder: fine-tuning writes metrics.jsonl here
    callbacks: list[Callback] = field(default_factory=list)


@dataclass
class Compressed:
    """What a method hands back: the model ready for inference and what to store for it."""

    model: nn.Module
    tensors: dict[str, torch.Tensor]  # model.safetensors, plain tensors only
    options: Section  # the method's options with every automatic choice resolved
    meta: dict[str, Any] = field(default_factory=dict)  # JSON beside the tensors, read back by restore
    model_config: Section | None = None  # replaces the parent's model section (distill)
    train: dict[str, Any] = field(default_factory=dict)  # updates to the stored train section
    notes: dict[str, Any] = field(default_factory=dict)  # method facts for compression.json


@dataclass(frozen=True)
class Method:
    """A compression method: make the compressed model, and rebuild it from storage."""

    apply: Callable[[Job, Any], Compressed]
    # (fresh fp32 architecture in eval mode, options, stored tensors, stored meta) -> compressed model
    restore: Callable[[nn.Module, Any, dict[str, torch.Tensor], dict[str, Any]], nn.Module]
    needs_float_parent: bool = True  # refuses a quantized or half-precision parent
    makes_float: bool = False  # its output is a plain fp32 model other methods can take


COMPRESSORS: Registry[Method] = Registry("compression method")

# ------------------------------------------------------------------------- shared by methods


def merge_adapters(model: nn.Module) -> nn.Module:
    """Fold LoRA adapters into the encoder weights (in place): compression works on plain layers."""
    encoder = getattr(model, "encoder", None)
    if encoder is not None and hasattr(encoder, "merge_and_unload") and hasattr(encoder, "peft_config"):
        model.encoder = encoder.merge_and_unload()
    return model


def float_copy(model: nn.Module) -> nn.Module:
    """A copy of a parent's float model to compress, adapters merged, in eval mode."""
    return merge_adapters(copy.deepcopy(model)).eval()


def load_float(model: nn.Module, tensors: dict[str, torch.Tensor]) -> nn.Module:
    """Restore for methods whose result is the plain architecture (prune, distill)."""
    model = merge_adapters(model)
    model.load_state_dict(tensors)
    return model


def train_config(job: Job, epochs: int, lr: float) -> TrainConfig:
    """The parent's train section for further training: its optimizer, schedule, batch size and
    loss, with these epochs and learning rate, no checkpoints and no progress bar of its own."""
    return job.parent.config.train.model_copy(update={
        "epochs": epochs, "lr": lr, "checkpoint": CheckpointConfig(every_epochs=None), "progress": False,
    })


def class_counts(job: Job) -> np.ndarray | None:
    """Rows per class in the training split (for balanced class weights), None for regression."""
    schema = job.parent.schema
    if schema.task == "regression":
        return None
    return np.bincount(job.splits["train"].tensors[TARGET].long().numpy(), minlength=schema.num_classes)


@contextmanager
def quiet_torch_ao() -> Iterator[None]:
    """torch.ao.quantization warns on every call that it is deprecated in favour of torchao
    (not installed here) and that quantized tensors will go; the APIs still work as documented."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.ao\..*|modelworks\..*")
        warnings.filterwarnings("ignore", message=r".*(deprecated|reduce_range|must run observer).*")
        yield


# Registration happens on import, in the order `--method` lists them.
from modelworks.compression import quantize  # noqa: E402,F401
from modelworks.compression import prune  # noqa: E402,F401
from modelworks.compression import distill  # noqa: E402,F401
from modelworks.compression import half  # noqa: E402,F401
from modelworks.compression.measure import compare  # noqa: E402
from modelworks.compression.storage import read_weights, write_weights  # noqa: E402

# ------------------------------------------------------------------------------------ restore


def parse_options(method: str, options: dict[str, Any] | None = None, overrides: Sequence[str] = (), origin: str = "") -> Section:
    """The method's validated options from a mapping plus ``KEY=VALUE`` overrides."""
    entry = COMPRESSORS.get(method, where="--method")
    raw = apply_overrides(dict(options or {}), list(overrides))
    if "type" in raw:
        raise UserError(f"{origin or method + ' options'}: 'type' is not an option; the method is given by --method")
    return validate({"type": method, **raw}, origin or f"{method} options", entry.config_cls)


def restore_model(model: nn.Module, record: CompressionRecord, weights_path: Path) -> nn.Module:
    """The compressed model of a run: its fp32 architecture `model` rebuilt by the method that made it."""
    cfg = parse_options(record.method, record.options, origin=f"{weights_path.parent / store.CONFIG}: compression.options")
    tensors, meta = read_weights(weights_path)
    with quiet_torch_ao():
        return COMPRESSORS.get(record.method).impl.restore(model.eval(), cfg, tensors, meta).eval()


def lineage(path: Path) -> list[dict[str, Any]]:
    """The chain of runs from the original training run to `path`: [{run, method}], root first."""
    chain = []
    seen = set()
    current: Path | None = Path(path)
    while current is not None and current.resolve() not in seen:
        seen.add(current.resolve())
        if not (current / store.CONFIG).exists():
            chain.append({"run": str(current), "method": None, "missing": True})
            break
        record = read_yaml(current / store.CONFIG).get("compression")
        chain.append({"run": str(current), "method": record["method"] if record else None})
        current = Path(record["parent"]) if record else None
    return chain[::-1]


# -------------------------------------------------------------------------------- orchestrate


def compress_run(
    run: str | Path,
    method: str,
    options: dict[str, Any] | None = None,
    overrides: Sequence[str] = (),
    *,
    runs_dir: str | Path = "runs",
    progress: bool = False,
    callbacks: Sequence[Callback] = (),
    iterations: int = 30,
) -> Any:
    """Compress the run `run` with `method`; returns the new `Run`. See the module docstring.

    `progress` shows a progress bar while a method trains (prune fine-tuning, distill);
    `iterations` is the number of timed forward passes per model and batch size (at least 30).
    """
    from modelworks.pipeline import Run, load_run  # the engine imports this package lazily

    entry = COMPRESSORS.get(method, where="--method")
    cfg = parse_options(method, options, overrides)
    parent = load_run(run, runs_dir, device="cpu")
    made_by = parent.config.compression.method if parent.config.compression else None
    if entry.impl.needs_float_parent and made_by is not None and not COMPRESSORS.get(made_by).impl.makes_float:
        raise UserError(
            f"run {parent.name} holds a {made_by} model; {method} needs a float32 model: "
            f"compress its parent {parent.config.compression.parent} instead"
        )
    splits = parent.splits()
    if progress:
        callbacks = [ProgressBar(main_metric(parent.schema.task)[0]), *callbacks]
    run_dir = store.create_run_dir(parent.path.parent, f"{parent.name}-{method}")
    try:
        with quiet_torch_ao():
            result = entry.impl.apply(Job(parent, splits, run_dir, list(callbacks)), cfg)
        config = _child_config(parent.path, method, result)
        atomic_write_text(run_dir / store.CONFIG, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True))
        shutil.copyfile(parent.path / store.PREPROCESS, run_dir / store.PREPROCESS)
        store.write_json(run_dir / store.ENVIRONMENT, store.environment_info("cpu"))
        storage = write_weights(run_dir / store.WEIGHTS, result.tensors, result.meta)
        child = Run(run_dir, config, parent.preprocessor, result.model.eval(), torch.device("cpu"))
        with quiet_torch_ao():
            comparison = compare(parent, child, splits, iterations=iterations)
            child.save_report(splits, child.history, extra={
                "compression": method, "parent": parent.name, "parameters": comparison["compressed"]["parameters"],
            })
        store.write_json(run_dir / COMPRESSION_JSON, {
            "method": method, "parent": str(parent.path.resolve()), "options": _options_json(result.options),
            "lineage": lineage(run_dir), "notes": {**result.notes, "storage": storage}, **comparison,
        })
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)  # a half-made run would only confuse `find_run`
        raise
    return child


def _options_json(options: Section) -> dict[str, Any]:
    return options.model_dump(mode="json", exclude={"type"})


def _child_config(parent_dir: Path, method: str, result: Compressed):
    """The parent's stored config + the compression record (+ the student's model section)."""
    raw = read_yaml(parent_dir / store.CONFIG)
    if result.model_config is not None:
        raw["model"] = result.model_config.model_dump(mode="json")
    raw["train"] = {**raw.get("train", {}), **result.train}
    raw["compression"] = {"method": method, "parent": str(parent_dir.resolve()), "options": _options_json(result.options)}
    return validate(raw, "compressed run config")


__all__ = ["COMPRESSORS", "Compressed", "Job", "Method", "compress_run", "lineage", "restore_model"]

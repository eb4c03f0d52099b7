"""Train a run: resolve and prepare the experiment, fit the model, write the run folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from modelworks.config.schema import ExperimentConfig
from modelworks.continual.continuation import Continual
from modelworks.data.preprocess import Preprocessor
from modelworks.data.schema import TARGET
from modelworks.engine.resolve import Prepared, as_config, prepare
from modelworks.engine.run import Run
from modelworks.evaluate.metrics import main_metric
from modelworks.models import build_model
from modelworks.store import run as store
from modelworks.store.environment import Environment, write_environment
from modelworks.store.preprocess import PreprocessRecord, write_preprocess
from modelworks.store.tensorio import save_weights
from modelworks.training.callbacks import Callback, ProgressBar
from modelworks.training.distributed import World, barrier, broadcast_str, init_world, shutdown
from modelworks.training.loop import FitResult, fit
from modelworks.training.runtime import resolve_device, seed_everything
from modelworks.training.speed import place_data


def train(
    config: ExperimentConfig | str | Path | dict,
    *,
    base_dir: Path,
    overrides: Sequence[str] = (),
    resume: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool | None = None,
) -> Run | None:
    """Train a model from an experiment; returns the finished `Run` (None on non-zero DDP ranks).

    `base_dir` is where relative paths start: a config file's name, `resume`, `runs_dir`, and
    the data paths of a config given as an object or a dict (a file's start from its folder).
    With `resume`, continues that run from its last checkpoint with its stored config.
    """
    base_dir = Path(base_dir)
    resumed = store.StoredRun(store.find_run(resume, base_dir=base_dir)) if resume is not None else None
    cfg, data_dir, name = as_config(resumed.path / store.CONFIG if resumed else config, overrides, base_dir)
    continual = Continual.begin(cfg, base_dir)  # train.init_from / train.replay (modelworks.continual)
    cfg = continual.config
    device_type = resolve_device(cfg.train.device).type
    world = init_world(device_type)
    try:
        device = resolve_device(cfg.train.device, world.local_rank)
        seed_everything(cfg.train.seed, cfg.train.deterministic)
        prepared = prepare(cfg, data_dir, device, resumed.preprocess.state if resumed else continual.state, world.size)
        continual.prepare(prepared)
        cfg, pre = prepared.config, prepared.preprocessor
        splits = place_data(prepared.splits, device, cfg.train.speed)
        if resumed is not None:
            run_dir = resumed.path
        else:
            run_dir = _start_run(cfg, base_dir / cfg.runs_dir, name, pre, world, device)
        torch.manual_seed(cfg.train.seed)  # identical initial weights on every rank and on resume
        model = build_model(cfg.model, pre.schema_).to(device)
        continual.warm_start(model)
        show = cfg.train.progress if progress is None else progress
        bar = [ProgressBar(main_metric(cfg.data.task)[0])] if show and world.is_main else []
        penalty = continual.penalty(model, prepared, device)
        result = fit(
            model, splits["train"], splits.get("validation"), cfg.train, pre.schema_,
            device=device, world=world, run_dir=run_dir, class_counts=_class_counts(prepared),
            augment=pre.augment, callbacks=[*bar, *callbacks], resume=resumed is not None, penalty=penalty,
        )  # fmt: skip
        continual.balanced_finetune(model, prepared, device, world, augment=pre.augment, penalty=penalty)
        barrier(world)
        if not world.is_main:
            return None
        save_weights(run_dir / store.WEIGHTS, model.state_dict())
        run = Run(run_dir, cfg, pre, model, device, base_dir=base_dir)
        facts = _training_facts(result, cfg)
        facts.update({k: v for k, v in (("warnings", prepared.notes), ("dropped_rows", prepared.dropped)) if v})
        facts.update(continual.finish(run, prepared))
        run.save_report(splits, extra=facts, frames=prepared.frames)
        return run
    finally:
        shutdown(world)


def _start_run(
    cfg: ExperimentConfig, runs_dir: Path, name: str, pre: Preprocessor, world: World, device: torch.device
) -> Path:
    """Create the run folder and write what is known before training (on the main process)."""
    path = ""
    if world.is_main:
        folder = store.create_run_dir(runs_dir, name)
        store.write_config(folder, cfg)
        write_preprocess(folder, PreprocessRecord(state=pre.state_dict(), input_schema=pre.schema_.to_json()))
        gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
        write_environment(folder, Environment.capture(str(device), world_size=world.size, cuda_device=gpu))
        path = str(folder)
    return Path(broadcast_str(path, world))


def _training_facts(result: FitResult, cfg: ExperimentConfig) -> dict:
    """What only training knows, kept in the report: the best epoch and whether it stopped early."""
    stopped_early = result.state.stop_training and result.state.epoch < cfg.train.epochs
    return {"best_epoch": result.best_epoch, "stopped_early": stopped_early}


def _class_counts(prepared: Prepared) -> np.ndarray | None:
    schema = prepared.preprocessor.schema_
    if schema.task == "regression":
        return None
    target = prepared.splits["train"].tensors[TARGET].long()
    return np.bincount(target.numpy(), minlength=schema.num_classes)

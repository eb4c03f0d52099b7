"""Magnitude pruning with torch.nn.utils.prune, optionally fine-tuned to win back accuracy.

``unstructured``: the `amount` fraction of smallest-magnitude weights over every linear and
convolution layer at once (global L1), so layers that matter less lose more. ``structured``:
in each of those layers (the output layer excepted: its rows are the classes) the `amount`
fraction of output channels / neurons with the smallest Ln norm is zeroed whole.

With `finetune_epochs`, the pruned model trains further with the parent's train config (its
optimizer, schedule and batch size; the learning rate `finetune_lr`): the pruning masks stay on
during fine-tuning, so pruned weights stay zero, and are then made permanent (`prune.remove`).
The result is the parent's architecture with zeros in it; `storage` writes those tensors as
bitmask + non-zero values, so the file shrinks with the sparsity. Shapes do not change, so
latency does not either (dense kernels do not skip zeros).
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils import prune

from modelworks.compression.measure import main_metrics, model_metrics, test_split
from modelworks.compression.method import Compressed, Job, Method, class_counts, float_copy, load_float, train_config
from modelworks.compression.methods import PruneConfig
from modelworks.training.distributed import World
from modelworks.training.loop import fit
from modelworks.training.runtime import resolve_device

_PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def prunable_layers(model: nn.Module, structure: str) -> list[tuple[str, nn.Module]]:
    """(name, layer) of every layer pruning touches: linear and conv weights (embeddings never)."""
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, _PRUNABLE)]
    if structure == "structured":
        head = getattr(getattr(model, "head", None), "layers", None)
        output = head[-1] if head is not None else layers[-1][1]
        layers = [(name, m) for name, m in layers if m is not output]
    return layers


def sparsity(layers: list[tuple[str, nn.Module]]) -> float:
    """Fraction of zeros over the layers' weights."""
    zeros = sum(int((m.weight == 0).sum()) for _, m in layers)
    return zeros / max(1, sum(m.weight.numel() for _, m in layers))


def _apply(job: Job, cfg: PruneConfig) -> Compressed:
    parent = job.parent
    model = float_copy(parent.model)
    layers = prunable_layers(model, cfg.structure)
    if cfg.structure == "unstructured":
        prune.global_unstructured(
            [(m, "weight") for _, m in layers], pruning_method=prune.L1Unstructured, amount=cfg.amount
        )
    else:
        for _, m in layers:
            prune.ln_structured(m, "weight", amount=cfg.amount, n=cfg.norm, dim=0)
    test = test_split(job.splits, parent.config)
    before = main_metrics(parent.schema.task, model_metrics(model, parent, test))  # before fine-tuning
    if cfg.finetune_epochs:
        cfg = cfg.model_copy(update={"finetune_lr": cfg.finetune_lr or parent.config.train.lr})
        _finetune(job, model, cfg)
    for _, m in layers:
        prune.remove(m, "weight")  # weight = weight_orig * mask, for good
    model.eval()
    notes = {
        "sparsity": sparsity(layers),
        "pruned_layers": len(layers),
        "pruned_weights": sum(m.weight.numel() for _, m in layers),
        "before_finetune": before,
    }
    return Compressed(model, model.state_dict(), cfg, notes=notes)


def _finetune(job: Job, model: nn.Module, cfg: PruneConfig) -> None:
    """Train on with the masks in place: the optimizer moves weight_orig, the mask keeps zeros zero."""
    train_cfg = train_config(job, cfg.finetune_epochs, cfg.finetune_lr)
    device = resolve_device(train_cfg.device)
    fit(
        model.to(device),
        job.splits["train"],
        job.splits.get("validation"),
        train_cfg,
        job.parent.schema,
        device=device,
        world=World(),
        run_dir=job.run_dir,
        class_counts=class_counts(job),
        augment=job.parent.preprocessor.augment,
        callbacks=job.callbacks,
    )
    model.cpu()


METHOD = Method(_apply, load_float)  # declared in modelworks.compression.methods

"""What a run keeps of its data for later runs: the replay buffer and the frozen holdout.

The replay buffer is a class-balanced reservoir over every training row of a lineage: each class
gets an equal share of ``replay.size`` (a class with fewer rows keeps all of them and leaves the
rest to the others), and within a class the rows kept are a uniform sample of all the rows of that
class the lineage has trained on. A continuation merges its parent's buffer with its own training
rows without seeing the old rows again: of a class's ``q`` places, the number taken from the old
sample is drawn from the hypergeometric distribution of a uniform draw over old and new rows.

The holdout is a random sample of each window's test rows, frozen: a continuation carries its
parent's forward unchanged and adds its own window's, windows sharing ``replay.holdout_max`` evenly.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import torch

from modelworks.continual.config import ReplayConfig
from modelworks.data.batches import TensorBatches
from modelworks.data.schema import TARGET
from modelworks.store.samples import RowSample

WINDOW = "holdout_window"  # per holdout row: the index of the window (run) it came from, in meta["windows"]


def balanced_quota(available: Mapping[Hashable, int], size: int) -> dict[Hashable, int]:
    """Places per group, as equal as `size` allows, no group given more than it has (water-filling)."""
    quota = {}
    left = size
    groups = sorted(available, key=lambda g: available[g])
    for i, group in enumerate(groups):
        quota[group] = min(available[group], left // (len(groups) - i))
        left -= quota[group]
    return quota


def _groups(tensors: Mapping[str, torch.Tensor], classify: bool) -> np.ndarray:
    """Each row's group: its class index (classification), else one group for all."""
    n = len(tensors[TARGET])
    return tensors[TARGET].long().numpy() if classify else np.zeros(n, dtype=np.int64)


def update_buffer(
    parent: RowSample | None, new: Mapping[str, torch.Tensor], size: int, classify: bool, seed: int
) -> RowSample:
    """The buffer after training on `new` rows: `parent`'s buffer (None: the first run) merged with them."""
    rng = np.random.default_rng(seed)
    old = parent.tensors if parent is not None else {k: v[:0] for k, v in new.items()}
    seen_before = {int(k): n for k, n in (parent.meta.get("seen", {}) if parent is not None else {}).items()}
    old_groups, new_groups = _groups(old, classify), _groups(new, classify)
    classes = sorted(set(old_groups.tolist()) | set(new_groups.tolist()))
    old_rows = {c: np.flatnonzero(old_groups == c) for c in classes}
    new_rows = {c: np.flatnonzero(new_groups == c) for c in classes}
    quota = balanced_quota({c: len(old_rows[c]) + len(new_rows[c]) for c in classes}, size)
    keep_old, keep_new, seen = [], [], {}
    for c in classes:
        n_old, n_new, q = seen_before.get(c, len(old_rows[c])), len(new_rows[c]), quota[c]
        from_old = rng.hypergeometric(n_old, n_new, q) if n_old + n_new and q else 0
        from_old = max(min(from_old, len(old_rows[c])), q - n_new)  # within what each side holds
        keep_old.append(rng.choice(old_rows[c], from_old, replace=False))
        keep_new.append(rng.choice(new_rows[c], q - from_old, replace=False))
        seen[str(c)] = n_old + n_new
    tensors = {
        k: torch.cat([old[k].index_select(0, _index(keep_old)), new[k].index_select(0, _index(keep_new))]) for k in new
    }
    return RowSample(tensors, {"seen": seen})


def _index(parts: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.concatenate(parts).astype(np.int64)) if parts else torch.zeros(0, dtype=torch.long)


def replay_rows(buffer: RowSample, new_rows: int, ratio: float, seed: int) -> dict[str, torch.Tensor]:
    """Rows of `buffer` to add to `new_rows` training rows so that they make `ratio` of the mix:
    the buffer repeated whole as often as it fits, then a random part of it."""
    n = round(ratio / (1.0 - ratio) * new_rows) if len(buffer) else 0
    generator = torch.Generator().manual_seed(seed)
    order = [torch.randperm(len(buffer), generator=generator) for _ in range(-(-n // max(len(buffer), 1)))]
    rows = torch.cat(order)[:n] if order else torch.zeros(0, dtype=torch.long)
    return {k: v.index_select(0, rows) for k, v in buffer.tensors.items()}


def mix(train: TensorBatches, extra: Mapping[str, torch.Tensor]) -> TensorBatches:
    """`train` with `extra` rows appended (the same keys; shuffled together by the loop)."""
    missing = set(train.tensors) ^ set(extra)
    if missing:
        raise ValueError(f"replayed rows do not match the training rows' layout: {sorted(missing)}")
    return TensorBatches({k: torch.cat([v, extra[k].to(v.dtype)]) for k, v in train.tensors.items()}, train.decode)


def update_holdout(
    parent: RowSample | None, test: Mapping[str, torch.Tensor], window: str, cfg: ReplayConfig, seed: int
) -> RowSample:
    """`parent`'s holdout with `cfg.holdout` random rows of this window's `test` rows added."""
    rng = np.random.default_rng(seed)
    n = len(test[TARGET])
    mine = torch.from_numpy(np.sort(rng.choice(n, min(cfg.holdout, n), replace=False)).astype(np.int64))
    windows = [*(parent.meta.get("windows", []) if parent is not None else []), window]
    own = {k: v.index_select(0, mine) for k, v in test.items()}
    own[WINDOW] = torch.full((len(mine),), len(windows) - 1, dtype=torch.long)
    tensors = {k: torch.cat([parent.tensors[k], own[k]]) for k in own} if parent is not None else own
    ids = tensors[WINDOW].numpy()
    quota = balanced_quota({w: int((ids == w).sum()) for w in range(len(windows))}, cfg.holdout_max)
    keep = np.concatenate([np.flatnonzero(ids == w)[: quota[w]] for w in range(len(windows))])
    rows = torch.from_numpy(keep.astype(np.int64))
    return RowSample({k: v.index_select(0, rows) for k, v in tensors.items()}, {"windows": windows})


def holdout_rows(holdout: RowSample) -> TensorBatches:
    """The holdout's rows as a model reads them (without the window each came from)."""
    return TensorBatches({k: v for k, v in holdout.tensors.items() if k != WINDOW})

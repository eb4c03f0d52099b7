"""The Optuna sampler or pruner each declared name stands for (see `declarations`).

A sampler factory takes the search and the session's seed; a pruner factory takes the search.
Steps are epochs, counted from 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import optuna

if TYPE_CHECKING:
    from modelworks.tuning.folder import Search


def tpe(search: Search, seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=seed)


def random(search: Search, seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


def grid(search: Search, seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.GridSampler(search.space.grid(), seed=seed)


def no_pruning(search: Search) -> optuna.pruners.BasePruner:
    return optuna.pruners.NopPruner()


def median(search: Search) -> optuna.pruners.BasePruner:
    """A trial can be pruned from epoch ``warmup_epochs + 1`` on."""
    p = search.tune.pruner
    return optuna.pruners.MedianPruner(n_startup_trials=p.startup_trials, n_warmup_steps=p.warmup_epochs + 1)


def hyperband(search: Search) -> optuna.pruners.BasePruner:
    p = search.tune.pruner
    return optuna.pruners.HyperbandPruner(
        min_resource=p.min_epochs, max_resource=search.epochs, reduction_factor=p.reduction_factor
    )


def successive_halving(search: Search) -> optuna.pruners.BasePruner:
    p = search.tune.pruner
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=p.min_epochs, reduction_factor=p.reduction_factor)

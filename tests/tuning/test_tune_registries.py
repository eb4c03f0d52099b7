"""The sampler and pruner registries: every declared name is accepted by the schema and builds
its Optuna object; the schema's choices are the registries' names."""

from __future__ import annotations

import optuna
import pytest

from modelworks.config.load import validate
from modelworks.errors import UserError
from modelworks.tuning.declarations import PRUNERS, SAMPLERS
from modelworks.tuning.folder import Search
from modelworks.tuning.space import Space

BASE = {"data": {"source": "builtin:iris"}, "model": {"type": "mlp", "hidden": [8]}, "train": {"epochs": 3}}


def _search(tmp_path, tune: dict) -> Search:
    raw = {**BASE, "tune": {"space": {"model.hidden": {"choice": [[8], [16]]}}, "metric": "val_accuracy", **tune}}
    config = validate(raw, "experiment")
    return Search(tmp_path, raw, config.tune, Space.build(config), config.train.epochs)


@pytest.mark.parametrize("name", SAMPLERS.names())
def test_every_sampler_builds(tmp_path, name):
    sampler = _search(tmp_path, {"sampler": name}).sampler(seed=1)
    assert isinstance(sampler, optuna.samplers.BaseSampler)


@pytest.mark.parametrize("name", PRUNERS.names())
def test_every_pruner_builds_and_declares_its_options(tmp_path, name):
    search = _search(tmp_path, {"pruner": {"type": name}})
    assert isinstance(search.pruner(), optuna.pruners.BasePruner)
    assert set(PRUNERS.get(name).meta["options"]) <= set(type(search.tune.pruner).model_fields)


def test_cross_validation_turns_pruning_off(tmp_path):
    assert isinstance(_search(tmp_path, {"pruner": "median", "cv_folds": 2}).pruner(), optuna.pruners.NopPruner)


def test_an_undeclared_name_is_refused_naming_the_key():
    with pytest.raises(UserError, match="tune.sampler"):
        validate({**BASE, "tune": {"space": {"train.lr": {"choice": [0.1]}}, "sampler": "cmaes"}}, "experiment")
    with pytest.raises(UserError, match="tune.pruner: .*successive_halving.*patient"):
        validate({**BASE, "tune": {"space": {"train.lr": {"choice": [0.1]}}, "pruner": "patient"}}, "experiment")

"""The search space: every bad one is a clear error before anything runs; values go in as written."""

from __future__ import annotations

import pytest

import modelworks
from modelworks.config.load import validate
from modelworks.config.schema import ExperimentConfig
from modelworks.tuning.space import Space

LR = {"train.lr": {"loguniform": [1.0e-4, 1.0e-1]}}


@pytest.mark.parametrize(
    "tune, train, message",
    [
        (
            {"space": {"train.lrr": {"loguniform": [1e-4, 1e-1]}}},
            {},
            r"train\.lrr is not a config path: train has no key 'lrr' \(did you mean 'train\.lr'\?\)",
        ),
        (
            {"space": {"model.hiden": {"choice": [[8]]}}},
            {},
            r"model\.hiden is not a config path: model of type 'mlp' has no key 'hiden'",
        ),
        (
            {"space": {"model.hidden": {"choice": []}}},
            {},
            r"tune\.space\.model\.hidden\.choice: .*the choice list is empty",
        ),
        (
            {"space": {"train.lr": {"uniform": [0.1, 0.01]}}},
            {},
            r"tune\.space\.train\.lr\.uniform: .*lower bound 0\.1 is greater than upper bound 0\.01",
        ),
        (
            {"space": {"train.batch_size": {"int": [64, 8]}}},
            {},
            r"tune\.space\.train\.batch_size\.int: .*lower bound 64 is greater than upper bound 8",
        ),
        ({"space": {"train.lr": {"loguniform": [0, 0.1]}}}, {}, r"loguniform bounds must be positive"),
        (
            {"space": {**LR, "model.hidden": {"choice": [[8]]}}, "sampler": "grid"},
            {},
            r"sampler 'grid' needs choice or int dimensions; train\.lr is loguniform",
        ),
        (
            {"space": {"train.lr": {"between": [1, 2]}}},
            {},
            r"tune\.space\.train\.lr: a search dimension needs exactly one of the keys",
        ),
        (
            {"space": {"train.lr.value": {"choice": [1]}}},
            {},
            r"train\.lr\.value is not a config path: train\.lr is a value, not a section",
        ),
        ({"space": {"data.features.name": {"choice": ["a"]}}}, {}, r"data\.features is a list"),
        ({"space": {"tune.trials": {"int": [1, 3]}}}, {}, r"tune\.trials cannot be searched"),
        (
            {"space": {"model.hidden": {"int": [8, 64]}}},
            {},
            r"model\.hidden=8.*\n.*model\.hidden: Input should be a valid list",
        ),
        ({"space": {"train.epochs": {"uniform": [1, 5]}}}, {}, r"train\.epochs: Input should be a valid integer"),
        (
            {
                "space": {
                    "train.optimizer.type": {"choice": ["sgd", "adam"]},
                    "train.optimizer.momentum": {"uniform": [0, 0.9]},
                }
            },
            {},
            r"train\.optimizer\.momentum is not a config path: train\.optimizer of type 'adam' has no key 'momentum'",
        ),
        (
            {"space": {"train.optimizer.type": {"choice": ["sgd", "adam"]}}},
            {"optimizer": {"type": "adam", "eps": 1.0e-6}},
            r"train\.optimizer sets eps=1e-06, which type 'sgd' does not accept",
        ),
        (
            {"space": {"train.optimizer.type": {"choice": ["sgd", "lion"]}}},
            {},
            r"train\.optimizer\.type='lion'.*\n.*train\.optimizer",
        ),
        (
            {"space": LR, "metric": "accuracy"},
            {},
            r"tune\.metric must be a validation metric.*did you mean 'val_accuracy'",
        ),
        (None, {}, r"has no tune: section"),
    ],
)
def test_a_bad_space_fails_before_any_trial(iris_experiment, tmp_path, tune, train, message):
    path = iris_experiment(tune, train=train)
    with pytest.raises(modelworks.UserError, match=message):
        modelworks.tune(path, trials=2)
    assert not (tmp_path / "runs").exists()  # no study folder, so no trial folder either


def _config(space: dict, **sections) -> ExperimentConfig:
    return validate(
        {"data": {"source": "builtin:iris"}, "model": {"type": "mlp"}, "tune": {"space": space}, **sections}, "test"
    )


def test_switching_a_union_member_drops_only_the_old_defaults():
    # a fully dumped config (as from an ExperimentConfig object) holds every default of adam
    config = _config({"train.optimizer.type": {"choice": ["sgd", "adam"]}})
    raw = config.model_dump(mode="json")
    space = Space.build(config)
    space.check(raw)
    sgd = space.apply(raw, {"train.optimizer.type": "sgd"})
    assert sgd["train"]["optimizer"] == {"type": "sgd"}
    assert validate(sgd, "test").train.optimizer.type == "sgd"
    assert space.apply(raw, {"train.optimizer.type": "adam"})["train"]["optimizer"] == raw["train"]["optimizer"]


def test_values_are_written_as_they_are():
    config = _config(
        {
            "train.lr": {"loguniform": [1e-6, 1e-4]},
            "model.hidden": {"choice": [[64, 64], [8]]},
            "train.early_stopping.patience": {"int": [2, 4]},
        }
    )
    raw = config.model_dump(mode="json", exclude={"tune"})
    out = validate(
        Space.build(config).apply(
            raw, {"train.lr": 1e-05, "model.hidden": [64, 64], "train.early_stopping.patience": 3}
        ),
        "test",
    )
    assert out.train.lr == 1e-05 and isinstance(out.train.lr, float)  # not the YAML string '1e-05'
    assert out.model.hidden == [64, 64] and out.train.early_stopping.patience == 3

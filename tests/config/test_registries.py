"""The config schema loads without torch, and every registry it is assembled from keeps its contract:
each entry's implementation imports, its config class builds with defaults, and the schema's
choices are exactly the registered names."""

from __future__ import annotations

import subprocess
import sys
from typing import get_args

import pytest

from modelworks.config.schema import ExperimentConfig, LossConfig, TrainConfig
from modelworks.data.feature_types import FEATURES
from modelworks.evaluate.metrics import METRICS
from modelworks.models import MODELS
from modelworks.training.loss_config import LOSSES, default_loss, losses_for
from modelworks.training.optim_config import OPTIMIZERS, SCHEDULERS

REGISTRIES = {
    "model": MODELS,
    "optimizer": OPTIMIZERS,
    "scheduler": SCHEDULERS,
    "loss": LOSSES,
    "feature": FEATURES,
    "metric": METRICS,
}
ENTRIES = [(kind, entry.name) for kind, registry in REGISTRIES.items() for entry in registry]


def test_loading_the_schema_and_the_registries_does_not_import_torch() -> None:
    code = (
        "import sys, modelworks.config.schema, modelworks.config.load, modelworks.models.pretrained_config\n"
        "heavy = ('torch', 'tokenizers', 'sklearn', 'transformers')\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"loading the schema imported {out}"
    code = "import sys, modelworks.evaluate.metrics; print(any(m.startswith('torch') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False", "the metric registry imported torch"


@pytest.mark.parametrize("kind, name", ENTRIES)
def test_every_entry_imports_its_implementation(kind: str, name: str) -> None:
    entry = REGISTRIES[kind].get(name)
    assert callable(entry.impl), f"{kind} {name!r}: {entry.impl_path} is not importable"


@pytest.mark.parametrize("kind, name", [(k, n) for k, n in ENTRIES if k not in ("loss", "metric")])
def test_every_config_class_builds_with_defaults(kind: str, name: str) -> None:
    cls = REGISTRIES[kind].get(name).config_cls
    required = {"feature": {"name": "x"}, "model": {"path": "/nowhere"} if name == "pretrained" else {}}.get(kind, {})
    assert cls(**required).type == name


def test_schema_choices_are_the_registered_names() -> None:
    union = lambda field: {cls.model_fields["type"].default for cls in get_args(field.annotation)}  # noqa: E731
    assert union(ExperimentConfig.model_fields["model"]) == set(MODELS.names())
    assert union(TrainConfig.model_fields["optimizer"]) == set(OPTIMIZERS.names())
    assert union(TrainConfig.model_fields["scheduler"]) == set(SCHEDULERS.names())
    assert set(get_args(LossConfig.model_fields["type"].annotation)) == {"auto", *LOSSES.names()}


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_every_task_has_an_auto_loss_and_one_main_metric_that_serve_it(task: str) -> None:
    assert default_loss(task) in losses_for(task)
    mains = [e for e in METRICS if task in e.meta.get("main_for", ())]
    assert len(mains) == 1 and task in mains[0].meta["tasks"]


def test_metrics_declare_a_direction() -> None:
    assert all(entry.meta["direction"] in ("max", "min") for entry in METRICS)

"""The continue job's config, checked before it is queued (no server: the facade's check)."""

from __future__ import annotations

import pytest

from modelworks import api
from modelworks.errors import UserError

GOOD = {"model": "clf@production", "data": "dataset:clicks@2"}


def test_a_continue_config_names_a_model_version_and_a_dataset_version() -> None:
    checked = api.check_job_config("continue", {**GOOD, "gate": {"epsilon": 0.05}, "train": {"epochs": 2}})
    assert checked.config["gate"]["epsilon"] == 0.05 and checked.config["gate"]["alpha"] == 0.05
    assert checked.config["alias"] is None and checked.gpus == 0
    for bad, key in (({"model": "clf"}, "config: model"), ({"data": "clicks.csv"}, "config: data"),
                     ({"gate": {"delt": 1}}, "gate.delt"), ({"train": {"epochz": 1}}, "epochz"),
                     ({"train": {"init_from": "/somewhere/else"}}, "init_from")):  # fmt: skip
        with pytest.raises(UserError, match=key):
            api.check_job_config("continue", {**GOOD, **bad})

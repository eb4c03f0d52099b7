"""The executor registry: every declared executor imports (where its extra is installed), and a
worker setting names one of them."""

from __future__ import annotations

import importlib.util
import typing

import pytest

from modelworks.errors import UserError
from modelworks.jobs.executor import LocalExecutor
from modelworks.jobs.executors import EXECUTORS, make_executor
from modelworks.platform.settings import Settings


@pytest.mark.parametrize("name", EXECUTORS.names())
def test_every_executor_is_declared_with_an_importable_class(name):
    entry = EXECUTORS.get(name)
    extra = entry.meta["extra"]
    if extra is not None and importlib.util.find_spec(extra) is None:
        pytest.skip(f"the {extra} extra is not installed")
    cls = entry.impl
    assert all(callable(getattr(cls, call)) for call in ("submit", "poll", "cancel"))


def test_make_executor_by_name():
    assert isinstance(make_executor("local"), LocalExecutor)
    with pytest.raises(UserError, match="unknown executor 'slurm'; use 'local' or 'ray'"):
        make_executor("slurm")


def test_the_executor_setting_offers_exactly_the_declared_executors():
    """`Settings` (the platform, which must not import the job layer) lists the names itself."""
    assert set(typing.get_args(Settings.model_fields["executor"].annotation)) == set(EXECUTORS.names())

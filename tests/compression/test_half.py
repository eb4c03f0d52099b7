"""Half precision halves the file and keeps the predictions."""

from __future__ import annotations

import json

import pytest

from modelworks.api import compress

from .conftest import reopened_matches


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_half_halves_the_size_on_disk(digits_mlp, dtype):
    run = compress(digits_mlp, "half", dtype=dtype)
    result = json.loads((run.path / "compression.json").read_text())
    assert 1.9 < result["change"]["size_ratio"] <= 2.0
    assert run.config.compression.options["compute"] in ("half", "float32")  # auto, resolved and recorded
    assert abs(result["change"]["accuracy"]) <= 0.02
    reopened_matches(run)

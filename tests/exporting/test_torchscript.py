"""TorchScript export of every architecture: torch.jit.load gives back PyTorch's outputs."""

from __future__ import annotations

import json

import pytest
import torch

from modelworks.exporting.export import export_run
from modelworks.exporting.interface import input_names
from modelworks.store.files import EXPORT_JSON

from .conftest import RUN_IDS


@pytest.mark.parametrize("model_type,run_id", RUN_IDS)
def test_torchscript_round_trip_is_equal(trained, model_type: str, run_id: str) -> None:
    run = trained[run_id]
    result = export_run(run, "torchscript")
    assert result.file == run.path / "export" / "torchscript" / "model.pt"
    record = json.loads((result.folder / EXPORT_JSON).read_text())
    assert record["check"]["passed"] and record["check"]["max_abs_diff"] <= 1e-4
    assert record["inputs"] == input_names(run.schema)

    loaded = torch.jit.load(str(result.file))
    test = run.splits()["test"].tensors
    for rows in (1, 3, len(test["target"])):
        inputs = [test[name][:rows] for name in record["inputs"]]
        with torch.inference_mode():
            expected = run.model(dict(zip(record["inputs"], inputs, strict=False)))
            torch.testing.assert_close(loaded(*inputs), expected, atol=1e-5, rtol=0)

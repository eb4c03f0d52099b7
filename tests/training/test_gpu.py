"""GPU paths (CUDA, bf16/fp16 autocast): skipped where no CUDA device is visible, as in CI.
The exact-resume test in test_fit.py also runs on CUDA when one is visible."""

from __future__ import annotations

import pytest
import torch

import modelworks

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_cnn_trains_on_cuda_with_autocast(make_config, precision):
    data = {"source": "builtin:digits", "features": [{"name": "image", "type": "image"}]}
    train = {"epochs": 5, "device": "auto", "precision": precision, "batch_size": 64}
    run = modelworks.train(make_config(data, {"type": "cnn"}, train))
    assert run.device.type == "cuda"
    assert run.config.train.device == "cuda"
    assert run.report["summary"]["accuracy"] > 0.9


def test_a_cuda_run_loads_and_predicts_on_cpu(make_config, blobs_csv):
    data = {"source": str(blobs_csv), "target": "label", "split": {"column": "split"}}
    run = modelworks.train(make_config(data, train={"device": "cuda", "epochs": 5}))
    on_cpu = modelworks.load_run(run.path, device="cpu")
    assert on_cpu.device.type == "cpu"
    frame = __import__("pandas").read_csv(blobs_csv)
    assert (on_cpu.predict(frame)["prediction"] == run.predict(frame)["prediction"]).all()

"""Small real searches: iris, a one-layer MLP, a few epochs, one torch thread (tiny models run
fastest on one, and the machine's cores are shared with the other tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def iris_experiment(tmp_path: Path):
    """Write an iris experiment with the given tune section (and train/model tweaks); return its path."""

    def make(tune: dict, train: dict | None = None, model: dict | None = None, **top) -> Path:
        cfg = {
            "runs_dir": str(tmp_path / "runs"),
            "data": {"source": "builtin:iris"},
            "model": model or {"type": "mlp", "hidden": [16]},
            "train": {"epochs": 4, "batch_size": 16, **(train or {})},
            "tune": tune,
            **top,
        }
        path = tmp_path / "iris.yaml"
        path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
        return path

    return make

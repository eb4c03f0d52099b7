"""Shared fixtures: small real data sets written to disk, and a quiet training config; the platform
fixtures (real databases, a live server, job workers) live in tests/fixtures/ and are registered
here for every test folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

pytest_plugins = ("tests.fixtures.platform", "tests.fixtures.jobs", "tests.fixtures.redis")


@pytest.fixture
def make_config(tmp_path: Path):
    """Write an experiment YAML into tmp_path (runs go to tmp_path/runs) and return its path."""

    def make(data: dict, model: dict | None = None, train: dict | None = None, **top) -> Path:
        cfg = {
            "runs_dir": str(tmp_path / "runs"),
            "data": data,
            "model": model or {"type": "mlp", "hidden": [16]},
            "train": {"epochs": 3, "batch_size": 16, "progress": False, **(train or {})},
            **top,
        }
        path = tmp_path / f"exp{len(list(tmp_path.glob('exp*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
        return path

    return make


@pytest.fixture
def blobs_csv(tmp_path: Path) -> Path:
    """192 rows, 3 well-separated classes over 4 numeric columns and one categorical, with an
    explicit split column: 128 train, 32 validation, 32 test."""
    rng = np.random.default_rng(0)
    n = 192
    y = np.arange(n) % 3
    x = rng.normal(size=(n, 4)) + y[:, None] * 2.0
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    frame["colour"] = np.where(y == 0, "red", np.where(y == 1, "green", "blue"))
    frame["label"] = np.array(["cat", "dog", "fox"])[y]
    frame["split"] = ["train"] * 128 + ["validation"] * 32 + ["test"] * 32
    path = tmp_path / "blobs.csv"
    frame.to_csv(path, index=False)
    return path

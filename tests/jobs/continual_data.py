"""Tiny labelled windows for the continual tests: an old world and a shifted one.

Old rows: channel ``a``, the label is whether ``x`` > 0 (two clusters, at -2 and +2). New rows:
channel ``b``, the rule reversed (the label is whether ``x`` < 0): the version trained on old rows
gets them all wrong, a model trained on both learns the channel. ``noise`` holds nothing.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd


def old_rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = np.where(y == 1, 2.0, -2.0) + rng.normal(0, 0.3, n)
    return pd.DataFrame({"x": x.round(4), "noise": rng.normal(0, 1, n).round(4), "channel": "a", "label": y})


def new_rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = np.where(y == 1, -2.0, 2.0) + rng.normal(0, 0.3, n)  # the old rule, reversed
    return pd.DataFrame({"x": x.round(4), "noise": rng.normal(0, 1, n).round(4), "channel": "b", "label": y})


def csv(*frames: pd.DataFrame) -> bytes:
    out = io.StringIO()
    pd.concat(frames, ignore_index=True).to_csv(out, index=False)
    return out.getvalue().encode()


def base_config(dataset: str) -> dict:
    return {
        "data": {
            "source": f"dataset:{dataset}@1",
            "target": "label",
            "features": [
                {"name": "x", "type": "numeric"},
                {"name": "noise", "type": "numeric"},
                {"name": "channel", "type": "categorical"},
            ],
            "split": {"validation": 0.2, "test": 0.25, "seed": 1},
        },
        "model": {"type": "mlp", "hidden": [16]},
        "train": {"epochs": 15, "batch_size": 16, "lr": 0.01, "device": "cpu"},
        "evaluate": {"baselines": ["dummy"]},
    }

"""The classical baselines on image inputs: a linear SVM on the pixels of small image sets, and a
closed-form ridge classifier on large ones, so that they cost the report about a second, not the
minutes a linear SVM takes there."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from modelworks.data.schema import TARGET, InputSchema, image_key
from modelworks.evaluate.baselines import Rows, fit_baselines


def images(n: int, seed: int) -> Rows:
    """Three classes of 1x12x12 images: a bright top, middle or bottom band, in noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    pixels = rng.normal(0.0, 1.0, (n, 1, 12, 12)).astype(np.float32)
    for i, label in enumerate(labels):
        pixels[i, 0, 4 * label : 4 * label + 4, :] += 1.5
    return Rows(pd.DataFrame({"label": labels}), {image_key("x"): torch.from_numpy(pixels),
                                                  TARGET: torch.from_numpy(labels)})  # fmt: skip


def test_image_baselines_fit_a_ridge_classifier_on_many_pixels(monkeypatch):
    monkeypatch.setattr("modelworks.evaluate.baselines.MAX_SVM_CELLS", 600 * 144 - 1)  # as if Fashion-MNIST
    schema = InputSchema(task="multiclass", num_classes=3, class_names=["top", "middle", "bottom"],
                         image={"x": (1, 12, 12)})  # fmt: skip
    out = fit_baselines(["dummy", "linear"], schema, [], images(600, 0), images(300, 1), {"accuracy": 0.9}, 0.5)
    dummy, linear = out.results
    assert linear.skipped is None, linear.skipped
    assert linear.method == "pixels -> ridge classifier"
    assert linear.summary["accuracy"] > 0.95 > dummy.summary["accuracy"]
    assert out.best == "linear" and out.margin is not None and out.margin < 0
    monkeypatch.undo()  # 600 x 144 pixel values: small enough for the SVM
    small = fit_baselines(["linear"], schema, [], images(600, 0), images(300, 1), {"accuracy": 0.9}, 0.5)
    assert small.results[0].method == "pixels -> linear SVM" and small.results[0].summary["accuracy"] > 0.95

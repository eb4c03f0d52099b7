"""Tiny trained runs (trained for real, a few epochs) and a real server on 127.0.0.1 for the serving tests."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import uvicorn

import modelworks
from modelworks.evaluate import report
from modelworks.exporting.export import export_run
from modelworks.serve.app import ServeHooks, ServeLimits, create_app
from modelworks.serve.model import ServedModel
from modelworks.serve.modelset import ModelSet, deploy

QUIET = {"progress": False, "checkpoint": {"every_epochs": None}, "device": "cpu", "batch_size": 32}
RECIPES = {
    "iris": ({"source": "builtin:iris"}, {"type": "mlp", "hidden": [16]}, 5),
    "cancer": ({"source": "builtin:breast_cancer"}, {"type": "mlp", "hidden": [16]}, 3),
    "text": (None, {"type": "mlp", "hidden": [16], "text_embedding_dim": 16}, 3),
    "digits": ({"source": "builtin:digits", "limit": 400, "features": [{"name": "image", "type": "image"}]},
               {"type": "cnn", "blocks": [{"filters": 8}], "hidden": [16]}, 2),
}  # fmt: skip


def text_frame(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    words = [["rain", "cloud", "storm", "wind"], ["goal", "match", "team", "score"], ["bread", "soup", "salt", "oven"]]
    labels = np.arange(n) % 3
    texts = [" ".join(rng.choice(words[y], size=rng.integers(1, 8))) for y in labels]
    return pd.DataFrame({"text": texts, "source": rng.choice(["web", "mail"], size=n),
                         "label": np.array(["weather", "sport", "food"])[labels]})  # fmt: skip


class Runs:
    """Trains each recipe on first use (and exports it to ONNX); shared by the session."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.runs: dict[str, modelworks.Run] = {}
        self.text_csv = folder / "texts.csv"
        text_frame().to_csv(self.text_csv, index=False)

    def __getitem__(self, key: str) -> modelworks.Run:
        if key not in self.runs:
            data, model, epochs = RECIPES[key]
            if data is None:
                data = {"source": str(self.text_csv), "target": "label",
                        "features": [{"name": "text", "type": "text", "max_length": 10, "vocab_size": 100},
                                     {"name": "source", "type": "categorical"}]}  # fmt: skip
            config = {"name": key, "runs_dir": str(self.folder / "runs"), "data": data, "model": model,
                      "train": {**QUIET, "epochs": epochs}}  # fmt: skip
            with pytest.MonkeyPatch.context() as patch:  # the HTML report's plots: slow, and unread here
                patch.setattr(report, "_html", lambda *a, **k: "<html></html>")
                run = modelworks.train(config)
            export_run(run, "onnx", {"quantize": "int8"})
            self.runs[key] = run
        return self.runs[key]


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> Runs:
    return Runs(tmp_path_factory.mktemp("serve-runs"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """A real uvicorn server in a thread on 127.0.0.1."""

    def __init__(self, models: ModelSet, hooks: ServeHooks | None = None, limits: ServeLimits | None = None) -> None:
        self.models = models
        self.app = create_app(models, hooks=hooks, limits=limits)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        import httpx

        deadline = time.time() + timeout
        while httpx.get(f"{self.url}/v2/health/ready").status_code != 200:
            if time.time() > deadline:
                raise RuntimeError("the test server did not become ready")
            time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


def load(run: modelworks.Run, runtime: str = "torch", name: str | None = None, **kwargs) -> ServedModel:
    return ServedModel.load(run.path, runtime=runtime, threads=1, name=name, **kwargs)


@pytest.fixture(scope="module")
def served(runs) -> Iterator[LiveServer]:
    """iris (torch and, as iris-onnx, ONNX), cancer, text and digits on one server."""
    models = ModelSet.of(
        deploy(load(runs["iris"], name="iris")), deploy(load(runs["iris"], "onnx", name="iris-onnx")),
        deploy(load(runs["cancer"], name="cancer")), deploy(load(runs["text"], name="text")),
        deploy(load(runs["digits"], name="digits")),
    )  # fmt: skip
    with LiveServer(models) as server:
        server.wait_ready()
        yield server


def run_coroutine(coro):
    return asyncio.run(coro)

"""`modelworks serve` as its own process: it answers, and SIGTERM finishes the requests in flight before it exits;
an export folder copied elsewhere, its run deleted, serves the run's numbers; a damaged one is refused, naming
the file."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import torch
import tritonclient.http as triton
from typer.testing import CliRunner

from modelworks.cli import app
from modelworks.data.builtins import BUILTINS
from modelworks.errors import UserError
from modelworks.exporting.export import export_run
from modelworks.exporting.interface import OUTPUT
from modelworks.serve.model import ServedModel
from modelworks.serve.modelset import ModelSet, deploy
from modelworks.store.export import read_export, read_inputs

from .conftest import LiveServer, free_port, text_frame
from .test_predict import assert_same

ROOT = Path(__file__).resolve().parents[2]


def start(args: list[str], port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "modelworks", "serve", *args, "--port", str(port)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    deadline = time.time() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            raise RuntimeError(f"modelworks serve did not become ready: {process.communicate()[0]}")
        time.sleep(0.2)


def test_sigterm_finishes_requests_in_flight(runs):
    """A request of 10,000 rows, split into one-row pieces, is still in the batch queue (the
    server's /metrics gauge says so) when SIGTERM arrives: it is answered in full, then the
    server exits and refuses new connections."""
    port = free_port()
    n = 10_000  # the most records one /predict request may hold
    process = start([str(runs["iris"].path), "--name", "iris", "--max-batch", "1", "--max-queue", str(n),
                     "--timeout", "600", "--threads", "1"], port)  # fmt: skip
    record = {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, "petal width (cm)": 0.2}
    url = f"http://127.0.0.1:{port}/v2/models/iris/predict"
    try:
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(httpx.post, url, json={"instances": [record] * n}, timeout=600)
            deadline = time.time() + 120
            while not answer.done() and queued(port) == 0:
                assert time.time() < deadline, "the request never reached the batch queue"
                time.sleep(0.01)
            assert queued(port) > 0, "answered before SIGTERM: nothing was in flight"
            process.send_signal(signal.SIGTERM)
            answer = answer.result()
        # uvicorn re-raises SIGTERM once it has shut down gracefully: the conventional exit of a stopped server
        assert process.wait(120) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert len(predictions) == n
    assert predictions[-1]["prediction"] == runs["iris"].predict(
        __import__("pandas").DataFrame([record]))["prediction"].iloc[0]  # fmt: skip
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/v2/health/live")


def queued(port: int) -> float:
    """The server's batch queue length, from its /metrics gauge."""
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics").text.splitlines():
        if line.startswith("modelworks_queue_pending{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture(scope="module")
def moved(runs, tmp_path_factory) -> dict[str, Path]:
    """The iris and text runs' ONNX exports (with int8), each made from a copy of its run folder,
    then moved to another folder and the copy deleted: nothing of the run is left to read."""
    folders = {}
    for key in ("iris", "text"):
        base = tmp_path_factory.mktemp(f"moved-{key}")
        copy = shutil.copytree(runs[key].path, base / "run", ignore=shutil.ignore_patterns("export"))
        made = export_run(copy, "onnx", {"quantize": "int8"})
        folders[key] = Path(shutil.move(made.folder, base / "elsewhere"))
        shutil.rmtree(copy)
    return folders


def records_of(run, frame: pd.DataFrame) -> list[dict]:
    fields = [f.name for f in run.config.data.features]
    return [{f: (None if pd.isna(v) else v) for f, v in row.items() if f in fields} for row in frame.to_dict("records")]


def test_an_export_folder_serves_without_its_run(runs, moved):
    run, folder = runs["iris"], moved["iris"]
    assert not Path(read_export(folder).run).exists()
    loaded = BUILTINS.get("iris").impl()
    frame = loaded.frame.sample(20, random_state=1).drop(columns=[loaded.target])
    rows = run.preprocessor.transform(frame, with_target=False)["numeric"].numpy()  # (20, 4)
    port = free_port()
    process = start([str(folder), "--name", "iris", "--threads", "1"], port)  # an export folder: onnx by default
    url = f"http://127.0.0.1:{port}/v2/models/iris"
    try:
        meta = httpx.get(url).json()
        answer = httpx.post(f"{url}/predict", json={"instances": records_of(run, frame)})
        client = triton.InferenceServerClient(f"127.0.0.1:{port}")  # OIP v2 infer: tritonclient, binary
        tensor = triton.InferInput("numeric", list(rows.shape), "FP32")
        tensor.set_data_from_numpy(rows, binary_data=True)
        binary = client.infer("iris", [tensor], outputs=[triton.InferRequestedOutput(OUTPUT, binary_data=True)])
        data = {"name": "numeric", "datatype": "FP32", "shape": list(rows.shape), "data": rows.ravel().tolist()}
        raw = httpx.post(f"{url}/infer", json={"inputs": [data]})  # and raw JSON
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert meta["platform"] == "onnxruntime_onnx"  # the metadata is the export's tensor interface
    assert [t["name"] for t in meta["inputs"]] == [spec.name for spec in read_inputs(folder).inputs]
    assert_same(answer, run.predict(frame, proba=True))  # the numbers of `modelworks predict` with the run
    with torch.inference_mode():
        expected = run.model({"numeric": torch.from_numpy(rows)}).numpy()
    np.testing.assert_allclose(binary.as_numpy(OUTPUT), expected, atol=1e-4)
    assert raw.status_code == 200, raw.text
    np.testing.assert_allclose(np.reshape(raw.json()["outputs"][0]["data"], expected.shape), expected, atol=1e-4)


def test_a_text_export_folder_serves_without_its_run(runs, moved):
    """In this process (the command line's path is the test above): predict, and raw text sent as BYTES."""
    run, folder = runs["text"], moved["text"]
    frame = text_frame(30).drop(columns=["label"])
    frame.loc[3, "text"] = None  # a missing text becomes the fitted fill, as in predict
    model = ServedModel.load(folder, runtime="onnx", threads=1, name="text")
    head = frame.iloc[4:10]  # its texts all given
    ids = model.encode(records_of(run, head))
    text = {"name": "text.text", "datatype": "BYTES", "shape": [6, 1], "data": head["text"].tolist()}
    source = {"name": "categorical", "datatype": "INT64", "shape": [6, 1], "data": ids["categorical"].ravel().tolist()}
    with LiveServer(ModelSet.of(deploy(model))) as server:
        server.wait_ready()
        answer = httpx.post(f"{server.url}/v2/models/text/predict", json={"instances": records_of(run, frame)})
        raw = httpx.post(f"{server.url}/v2/models/text/infer", json={"inputs": [source, text]})
    assert_same(answer, run.predict(frame, proba=True))
    assert raw.status_code == 200, raw.text
    expected = model.infer(ids)[OUTPUT]
    np.testing.assert_allclose(np.reshape(raw.json()["outputs"][0]["data"], expected.shape), expected, rtol=1e-5)


def test_an_int8_export_folder_serves_without_its_run(runs, moved):
    model = ServedModel.load(moved["text"], runtime="onnx", threads=1, int8=True)
    frame = text_frame(60).drop(columns=["label"])
    records = [{"text": t, "source": s} for t, s in zip(frame["text"], frame["source"], strict=True)]
    answer = model.decode(model.infer(model.encode(records)), len(records))
    expected = runs["text"].predict(frame)["prediction"].tolist()
    agreement = np.mean([a["prediction"] == e for a, e in zip(answer, expected, strict=True)])
    assert model.session._model_path.endswith("model.int8.onnx") and agreement >= 0.8


def test_a_damaged_export_folder_is_refused_naming_the_file(runs, moved, tmp_path):
    damaged = Path(shutil.copytree(moved["iris"], tmp_path / "damaged"))
    with (damaged / "config.yaml").open("a") as f:
        f.write("# edited after export\n")
    with pytest.raises(UserError, match=r"config\.yaml has changed since export"):
        ServedModel.load(damaged, runtime="onnx")
    (damaged / "config.yaml").write_bytes((moved["iris"] / "config.yaml").read_bytes())
    (damaged / "model.onnx").write_bytes((damaged / "model.onnx").read_bytes()[:-1])
    with pytest.raises(UserError, match=r"model\.onnx has changed since export"):
        ServedModel.load(damaged, runtime="onnx")
    with pytest.raises(UserError, match="holds no PyTorch weights"):
        ServedModel.load(moved["iris"], runtime="torch")
    (damaged / "preprocess.json").unlink()
    result = CliRunner().invoke(app, ["serve", str(damaged), "--port", str(free_port())], catch_exceptions=False)
    assert result.exit_code != 0 and f"{damaged} has no preprocess.json" in " ".join(result.output.split())


def test_serve_refuses_a_bad_runtime(runs):
    result = subprocess.run([sys.executable, "-m", "modelworks", "serve", str(runs["iris"].path), "--runtime", "tf"],
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)  # fmt: skip
    assert result.returncode != 0 and "--runtime must be torch or onnx" in result.stdout + result.stderr


def test_serve_refuses_bf16_on_onnx_naming_both(runs):
    result = CliRunner().invoke(
        app, ["serve", str(runs["iris"].path), "--runtime", "onnx", "--precision", "bf16"], catch_exceptions=False
    )
    assert result.exit_code != 0 and "precision bf16 needs the torch runtime" in " ".join(result.output.split())

"""`modelworks serve` as its own process: it answers, and SIGTERM finishes the requests in flight before it exits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from .conftest import free_port

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
    port = free_port()
    # a long batching delay keeps the requests queued when SIGTERM arrives
    process = start([str(runs["iris"].path), "--name", "iris", "--max-delay-ms", "1500", "--threads", "1"], port)
    record = {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, "petal width (cm)": 0.2}
    url = f"http://127.0.0.1:{port}/v2/models/iris/predict"
    try:
        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(httpx.post, url, json={"instances": [record]}, timeout=30) for _ in range(6)]
            time.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            answers = [f.result() for f in futures]
        # uvicorn re-raises SIGTERM once it has shut down gracefully: the conventional exit of a stopped server
        assert process.wait(30) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
    assert [a.status_code for a in answers] == [200] * 6
    assert answers[0].json()["predictions"][0]["prediction"] == runs["iris"].predict(
        __import__("pandas").DataFrame([record]))["prediction"].iloc[0]  # fmt: skip
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/v2/health/live")


def test_serve_onnx_export_folder(runs):
    port = free_port()
    process = start([str(runs["iris"].path / "export" / "onnx"), "--runtime", "onnx", "--name", "iris"], port)
    try:
        meta = httpx.get(f"http://127.0.0.1:{port}/v2/models/iris").json()
        assert meta["platform"] == "onnxruntime_onnx"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def test_serve_refuses_a_bad_runtime(runs):
    result = subprocess.run([sys.executable, "-m", "modelworks", "serve", str(runs["iris"].path), "--runtime", "tf"],
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)  # fmt: skip
    assert result.returncode != 0 and "--runtime must be torch or onnx" in result.stdout + result.stderr

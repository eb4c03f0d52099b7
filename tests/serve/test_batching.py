"""Dynamic batching, backpressure, timeouts, limits, readiness and version switching on a real server."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import tritonclient.http as triton

from modelworks.serve.app import ServeLimits
from modelworks.serve.batcher import DynamicBatcher, QueueFull
from modelworks.serve.model import ServedModel
from modelworks.serve.modelset import ModelSet, deploy

from .conftest import LiveServer, load


class Gated(ServedModel):
    """A real model whose forward passes (and warm-up) wait for a gate to open."""

    gate: threading.Event
    warm_gate: threading.Event

    def infer(self, inputs):
        self.gate.wait(30)
        return super().infer(inputs)

    def warm_up(self, rows=(1, 8)):
        self.warm_gate.wait(30)
        super().warm_up(rows)


def gated(run, name="iris") -> Gated:
    model = load(run, name=name)
    model.__class__ = Gated
    model.gate, model.warm_gate = threading.Event(), threading.Event()
    model.warm_gate.set()
    return model


def infer_body(rows: np.ndarray) -> dict:
    return {
        "inputs": [{"name": "numeric", "shape": list(rows.shape), "datatype": "FP32", "data": rows.ravel().tolist()}]
    }


def test_concurrent_requests_share_forward_passes(runs):
    models = ModelSet.of(deploy(load(runs["iris"], name="iris"), max_batch=64, max_delay_ms=50))
    rows = runs["iris"].splits()["test"].tensors["numeric"][:2].numpy()
    with LiveServer(models) as server:
        server.wait_ready()
        client = triton.InferenceServerClient(server.host, concurrency=16)
        tensor = triton.InferInput("numeric", [2, 4], "FP32")
        tensor.set_data_from_numpy(rows)
        pending = [client.async_infer("iris", [tensor]) for _ in range(32)]
        outputs = [p.get_result().as_numpy("outputs") for p in pending]
        stats = client.get_inference_statistics("iris")["model_stats"][0]
    assert all(np.allclose(out, outputs[0]) for out in outputs)
    assert stats["inference_count"] == 64  # 32 requests of 2 rows (warm-up does not count)
    assert stats["inference_count"] / stats["execution_count"] > 1


def test_a_request_larger_than_the_max_batch_is_split_and_answered(runs):
    model = load(runs["iris"], name="iris")
    models = ModelSet.of(deploy(model, max_batch=4, max_delay_ms=1))
    rows = runs["iris"].splits()["test"].tensors["numeric"][:10].numpy()
    with LiveServer(models) as server:
        server.wait_ready()
        answer = httpx.post(f"{server.url}/v2/models/iris/infer", json=infer_body(rows))
        stats = httpx.get(f"{server.url}/v2/models/iris/stats").json()["model_stats"][0]
    assert answer.status_code == 200
    np.testing.assert_allclose(np.reshape(answer.json()["outputs"][0]["data"], (10, 3)), model.infer(
        {"numeric": rows})["outputs"], atol=1e-5)  # fmt: skip
    assert stats["execution_count"] == 3 and stats["inference_count"] == 10


def test_a_full_queue_answers_503_with_retry_after_then_recovers(runs):
    model = gated(runs["iris"])
    models = ModelSet.of(deploy(model, max_batch=1, max_delay_ms=0, max_queue=2))
    rows = np.zeros((1, 4), np.float32)
    with LiveServer(models, limits=ServeLimits(timeout_s=20)) as server:
        model.gate.set()
        server.wait_ready()
        model.gate.clear()
        with ThreadPoolExecutor(8) as pool:
            # one runs (blocked), two wait in the queue, the rest are refused at once
            futures = [pool.submit(httpx.post, f"{server.url}/v2/models/iris/infer", json=infer_body(rows), timeout=30)
                       for _ in range(3)]  # fmt: skip
            while models.pick("iris").batcher.queued < 2:
                threading.Event().wait(0.01)
            refused = [httpx.post(f"{server.url}/v2/models/iris/infer", json=infer_body(rows)) for _ in range(3)]
            model.gate.set()
            answered = [f.result() for f in futures]
        after = httpx.post(f"{server.url}/v2/models/iris/infer", json=infer_body(rows))
    assert all(r.status_code == 503 and int(r.headers["Retry-After"]) >= 1 for r in refused)
    assert all("queue is full" in r.json()["error"] for r in refused)
    assert [r.status_code for r in answered] == [200, 200, 200]
    assert after.status_code == 200


def test_per_request_timeout(runs):
    model = gated(runs["iris"])
    models = ModelSet.of(deploy(model, max_batch=4))
    with LiveServer(models, limits=ServeLimits(timeout_s=0.3)) as server:
        model.gate.set()
        server.wait_ready()
        model.gate.clear()
        answer = httpx.post(f"{server.url}/v2/models/iris/infer", json=infer_body(np.zeros((1, 4), np.float32)))
        model.gate.set()
    assert answer.status_code == 503 and "timed out" in answer.json()["error"] and "Retry-After" in answer.headers


def test_oversize_body_is_413(runs):
    models = ModelSet.of(deploy(load(runs["iris"], name="iris")))
    with LiveServer(models, limits=ServeLimits(max_body_bytes=1000)) as server:
        server.wait_ready()
        answer = httpx.post(f"{server.url}/v2/models/iris/infer", json=infer_body(np.zeros((100, 4), np.float32)))
        predict = httpx.post(f"{server.url}/v2/models/iris/predict", content=b"[" * 5000)
    assert answer.status_code == 413 and "over the limit" in answer.json()["error"]
    assert predict.status_code == 413


def test_ready_only_after_load_and_warm_up(runs):
    model = gated(runs["iris"])
    model.gate.set()
    model.warm_gate.clear()
    with LiveServer(ModelSet.of(deploy(model))) as server:
        assert httpx.get(f"{server.url}/v2/health/live").status_code == 200
        not_ready = httpx.get(f"{server.url}/v2/health/ready")
        model_not_ready = httpx.get(f"{server.url}/v2/models/iris/ready")
        model.warm_gate.set()
        server.wait_ready()
        assert httpx.get(f"{server.url}/v2/models/iris/ready").status_code == 200
    assert not_ready.status_code == 503 and "error" in not_ready.json()
    assert model_not_ready.status_code == 503


def test_switch_and_canary_between_versions(runs):
    v1, v2 = load(runs["iris"], name="iris", version="1"), load(runs["iris"], name="iris", version="2")
    models = ModelSet.of(deploy(v1))
    body = infer_body(np.zeros((1, 4), np.float32))
    with LiveServer(models) as server:
        server.wait_ready()
        loop = server.app.state.loop
        asyncio.run_coroutine_threadsafe(models.add_ready(deploy(v2), route=False), loop).result(30)
        assert v2.warmed and models.ready
        models.route("iris", {"1": 0.7, "2": 0.3})
        seen = Counter(httpx.post(f"{server.url}/v2/models/iris/infer", json=body).json()["model_version"]
                       for _ in range(200))  # fmt: skip
        models.route("iris", {"2": 1})
        asyncio.run_coroutine_threadsafe(models.retire("iris", "1"), loop).result(10)
        after = httpx.post(f"{server.url}/v2/models/iris/infer", json=body).json()["model_version"]
        metrics = httpx.get(f"{server.url}/metrics").text
    assert 30 <= seen["2"] <= 90 and seen["1"] + seen["2"] == 200
    assert after == "2" and models.pick("iris", "1") is None
    assert 'modelworks_batch_size_count{model="iris",version="2"}' in metrics
    assert 'modelworks_inference_requests_total{model="iris",route="infer",status="200",version="1"}' in metrics


def test_batcher_refuses_past_its_queue():
    class Slow:
        def infer(self, inputs):
            threading.Event().wait(0.2)
            return {"outputs": inputs["x"]}

    async def scenario():
        batcher = DynamicBatcher(Slow(), max_batch=2, max_delay_ms=0, max_queue=3)
        first = asyncio.ensure_future(batcher.submit({"x": np.zeros((2, 1))}))
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFull):
            await batcher.submit({"x": np.zeros((8, 1))})  # 4 pieces of 2 rows: over the queue of 3
        big = await batcher.submit({"x": np.arange(6).reshape(6, 1)})  # 3 pieces: fits
        await first
        await batcher.close()
        return big, batcher.stats

    big, stats = asyncio.run(scenario())
    assert big["outputs"].ravel().tolist() == list(range(6)) and stats.executions == 4 and stats.inferences == 8


def test_texts_of_different_lengths_share_a_batch(runs):
    """Shorter token-id rows are right-padded with the pad id to join a batch; answers match one-by-one runs."""
    model = load(runs["text"], name="text")
    pad = next(t.pad_id for t in model.inputs if t.name == "text.text")
    data = runs["text"].splits()["test"].tensors
    requests = []
    for k in range(6):
        ids = data["text.text"][k : k + 1].numpy()
        length = max(int((ids != pad).sum()), 1)
        requests.append({"categorical": data["categorical"][k : k + 1].numpy(), "text.text": ids[:, :length]})
    alone = [model.infer(r)["outputs"] for r in requests]

    async def together():
        d = deploy(model, max_batch=8, max_delay_ms=50)
        d.batcher._pieces_per_batch = 8.0  # as under concurrent traffic: wait for the others
        answers = await asyncio.gather(*(d.batcher.submit(r) for r in requests))
        await d.batcher.close()
        return answers, d.batcher.stats

    answers, stats = asyncio.run(together())
    assert stats.executions == 1 and stats.inferences == 6
    for got, want in zip(answers, alone, strict=True):
        np.testing.assert_allclose(got["outputs"], want, atol=1e-5)

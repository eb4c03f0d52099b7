"""The platform's plug: authorization refusals answered as OIP errors, and every request metered."""

from __future__ import annotations

import httpx
import numpy as np
from starlette.exceptions import HTTPException

from modelworks.serve.app import ServeHooks
from modelworks.serve.modelset import ModelSet, deploy

from .conftest import LiveServer, load


class KeyHooks(ServeHooks):
    def __init__(self) -> None:
        self.records: list[tuple] = []

    async def authorize(self, request, model_name):
        key = request.headers.get("Authorization")
        if key is None:
            raise HTTPException(401, "an inference key is needed")
        if key == "Bearer slow-down":
            raise HTTPException(429, "over the rate limit", headers={"Retry-After": "7"})
        return key.removeprefix("Bearer ")

    def record(self, caller, model_name, version, rows, status, latency_s):
        self.records.append((caller, model_name, version, rows, status))


def test_authorize_and_record(runs):
    hooks = KeyHooks()
    body = {"inputs": [{"name": "numeric", "shape": [3, 4], "datatype": "FP32", "data": np.zeros(12).tolist()}]}
    with LiveServer(ModelSet.of(deploy(load(runs["iris"], name="iris"))), hooks=hooks) as server:
        server.wait_ready()
        url = f"{server.url}/v2/models/iris/infer"
        anonymous = httpx.post(url, json=body)
        limited = httpx.post(url, json=body, headers={"Authorization": "Bearer slow-down"})
        ok = httpx.post(url, json=body, headers={"Authorization": "Bearer k1"})
        bad = httpx.post(url, json={"inputs": []}, headers={"Authorization": "Bearer k1"})
        metadata = httpx.get(f"{server.url}/v2/models/iris")
        health = httpx.get(f"{server.url}/v2/health/ready")
    assert anonymous.status_code == 401 and anonymous.json() == {"error": "an inference key is needed"}
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert ok.status_code == 200 and bad.status_code == 400
    assert metadata.status_code == 401 and health.status_code == 200
    assert hooks.records == [("k1", "iris", "1", 3, 200), ("k1", "iris", "1", 0, 400)]

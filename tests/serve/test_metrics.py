"""The Prometheus series: counts kept as plain numbers, written as Prometheus families on scrape."""

from __future__ import annotations

import asyncio

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from modelworks.serve.batcher import DynamicBatcher
from modelworks.serve.metrics import ServeMetrics
from modelworks.serve.modelset import Deployment


class Doubler:
    def infer(self, inputs):
        return {"outputs": inputs["x"] * 2}


def samples(metrics: ServeMetrics) -> dict[tuple[str, tuple], float]:
    text = metrics.exposition().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}  # fmt: skip


def test_requests_rows_latency_and_batches_are_exposed_as_prometheus_series():
    metrics = ServeMetrics()
    deployment = Deployment(Doubler(), DynamicBatcher(Doubler(), max_batch=4), name="m", version="2")  # type: ignore[arg-type]
    metrics.watch(deployment)
    labels = (("model", "m"), ("version", "2"))
    assert samples(metrics)[("modelworks_batch_size_count", labels)] == 0  # a watched model's series exist at once

    async def two_requests():
        x = np.ones((3, 2), np.float32)
        answers = await asyncio.gather(deployment.batcher.submit({"x": x}), deployment.batcher.submit({"x": x[:2]}))
        await deployment.batcher.close()
        return answers

    answers = asyncio.run(two_requests())
    assert [a["outputs"].shape for a in answers] == [(3, 2), (2, 2)]
    metrics.request("m", "2", "infer", 200, 3, 0.004)
    metrics.request("m", "2", "infer", 200, 2, 0.02)
    metrics.request("m", "2", "infer", 400, 0, 0.001)

    got = samples(metrics)
    status = lambda code: (("model", "m"), ("route", "infer"), ("status", code), ("version", "2"))  # noqa: E731
    assert got[("modelworks_inference_requests_total", status("200"))] == 2
    assert got[("modelworks_inference_requests_total", status("400"))] == 1
    assert got[("modelworks_inference_rows_total", labels)] == 5  # rows of answered requests only
    bucket = lambda le: tuple(sorted((*labels, ("le", le))))  # noqa: E731
    assert got[("modelworks_request_latency_seconds_bucket", bucket("0.0025"))] == 0  # cumulative, le inclusive
    assert got[("modelworks_request_latency_seconds_bucket", bucket("0.005"))] == 1
    assert got[("modelworks_request_latency_seconds_bucket", bucket("+Inf"))] == 2
    assert got[("modelworks_request_latency_seconds_count", labels)] == 2
    assert abs(got[("modelworks_request_latency_seconds_sum", labels)] - 0.024) < 1e-9
    # 3 + 2 rows with at most 4 per forward pass: two executions, one queue wait per request
    assert got[("modelworks_executions_total", labels)] == 2
    assert got[("modelworks_batch_size_count", labels)] == 2 and got[("modelworks_batch_size_sum", labels)] == 5
    assert got[("modelworks_batch_size_bucket", bucket("2.0"))] == 1
    assert got[("modelworks_queue_seconds_count", labels)] == 2

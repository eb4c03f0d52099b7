"""The server's Prometheus series (prometheus-client), labelled by model (deployment) and version.

Each app has its own registry, so that several apps in one process (tests, replicas) do not
mix their counts.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE  # noqa: F401 - re-exported for the app
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from modelworks.serve.modelset import Deployment

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["model", "version"]
        self.requests = Counter(
            "modelworks_inference_requests",
            "Inference requests answered, by HTTP status",
            [*labels, "route", "status"],
            registry=self.registry,
        )
        self.rows = Counter("modelworks_inference_rows", "Rows (inferences) answered", labels, registry=self.registry)
        self.latency = Histogram(
            "modelworks_request_latency_seconds",
            "Request latency, end to end in the server",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue = Histogram(
            "modelworks_queue_seconds",
            "Time a request waited in the batch queue",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.compute = Histogram(
            "modelworks_compute_seconds",
            "Time of one forward pass",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch = Histogram(
            "modelworks_batch_size",
            "Rows per forward pass (average: inferences / executions)",
            labels,
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.executions = Counter("modelworks_executions", "Forward passes", labels, registry=self.registry)
        self._children: dict[tuple[str, str, str, int], tuple] = {}

    def watch(self, deployment: Deployment) -> None:
        """Hear of every forward pass of `deployment`'s batcher."""
        labels = (deployment.name, deployment.version)
        batch, executions = self.batch.labels(*labels), self.executions.labels(*labels)
        compute, queue = self.compute.labels(*labels), self.queue.labels(*labels)

        def observe(rows: int, waits: list[float], compute_s: float) -> None:
            batch.observe(rows)
            executions.inc()
            compute.observe(compute_s)
            for wait in waits:
                queue.observe(wait)

        deployment.batcher.observer = observe

    def request(self, model: str, version: str, route: str, status: int, rows: int, latency_s: float) -> None:
        key = (model, version, route, status)
        children = self._children.get(key)
        if children is None:  # labels() looks its child up under a lock: once per series, not per request
            children = self._children[key] = (
                self.requests.labels(model, version, route, str(status)),
                self.rows.labels(model, version),
                self.latency.labels(model, version),
            )
        children[0].inc()
        if status == 200:
            children[1].inc(rows)
            children[2].observe(latency_s)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

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

    def watch(self, deployment: Deployment) -> None:
        """Hear of every forward pass of `deployment`'s batcher."""
        labels = (deployment.name, deployment.version)

        def observe(rows: int, waits: list[float], compute_s: float) -> None:
            self.batch.labels(*labels).observe(rows)
            self.executions.labels(*labels).inc()
            self.compute.labels(*labels).observe(compute_s)
            for wait in waits:
                self.queue.labels(*labels).observe(wait)

        deployment.batcher.observer = observe

    def request(self, model: str, version: str, route: str, status: int, rows: int, latency_s: float) -> None:
        self.requests.labels(model, version, route, str(status)).inc()
        if status == 200:
            self.rows.labels(model, version).inc(rows)
            self.latency.labels(model, version).observe(latency_s)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

"""The server's Prometheus series (prometheus-client), labelled by model (deployment) and version.

Each app has its own registry, so that several apps in one process (tests, replicas) do not
mix their counts. The counts are plain numbers that the event loop's thread adds to (each
request, each forward pass) and that a collector turns into Prometheus families when /metrics
is read: prometheus-client's own Counter and Histogram take a lock per increment, six per
request here, which a CPU-bound server pays for in throughput.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE  # noqa: F401 - re-exported for the app
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from modelworks.serve.batcher import DynamicBatcher
from modelworks.serve.modelset import Deployment

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class _Histogram:
    """One histogram series: counts per bucket (le = upper bound; the last one +Inf) and the sum."""

    __slots__ = ("bounds", "labels", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.labels = [*map(floatToGoString, bounds), "+Inf"]  # as prometheus-client writes `le`
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, int]]:
        total, out = 0, []
        for bound, count in zip(self.labels, self.counts, strict=True):
            total += count
            out.append((bound, total))
        return out


class _Model:
    """The series of one (model, version)."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str], int] = {}  # (route, status) -> answered requests
        self.rows = 0
        self.latency = _Histogram(LATENCY_BUCKETS)
        self.queue = _Histogram(LATENCY_BUCKETS)
        self.compute = _Histogram(LATENCY_BUCKETS)
        self.batch = _Histogram(BATCH_BUCKETS)
        self.executions = 0
        self.batcher: DynamicBatcher | None = None  # its queue is read on each scrape


class ServeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._models: dict[tuple[str, str], _Model] = {}
        self.registry.register(self)

    def _model(self, model: str, version: str) -> _Model:
        series = self._models.get((model, version))
        if series is None:
            series = self._models[(model, version)] = _Model()
        return series

    def watch(self, deployment: Deployment) -> None:
        """Hear of every forward pass of `deployment`'s batcher."""
        series = self._model(deployment.name, deployment.version)

        def observe(rows: int, waits: list[float], compute_s: float) -> None:
            series.batch.observe(rows)
            series.executions += 1
            series.compute.observe(compute_s)
            for wait in waits:
                series.queue.observe(wait)

        deployment.batcher.observer = observe
        series.batcher = deployment.batcher

    def request(self, model: str, version: str, route: str, status: int, rows: int, latency_s: float) -> None:
        series = self._model(model, version)
        key = (route, str(status))
        series.requests[key] = series.requests.get(key, 0) + 1
        if status == 200:
            series.rows += rows
            series.latency.observe(latency_s)

    def collect(self) -> Iterator[Metric]:
        """The Prometheus families (the registry calls this on each scrape)."""
        labels = ["model", "version"]
        requests = CounterMetricFamily("modelworks_inference_requests", "Inference requests answered, by HTTP status",
                                       labels=[*labels, "route", "status"])  # fmt: skip
        rows = CounterMetricFamily("modelworks_inference_rows", "Rows (inferences) answered", labels=labels)
        executions = CounterMetricFamily("modelworks_executions", "Forward passes", labels=labels)
        pending = GaugeMetricFamily("modelworks_queue_pending",
                                    "Requests (or max-batch parts of larger ones) in the batch queue now",
                                    labels=labels)  # fmt: skip
        histograms = {
            "latency": HistogramMetricFamily("modelworks_request_latency_seconds",
                                             "Request latency, end to end in the server", labels=labels),
            "queue": HistogramMetricFamily("modelworks_queue_seconds", "Time a request waited in the batch queue",
                                           labels=labels),
            "compute": HistogramMetricFamily("modelworks_compute_seconds", "Time of one forward pass", labels=labels),
            "batch": HistogramMetricFamily("modelworks_batch_size",
                                           "Rows per forward pass (average: inferences / executions)", labels=labels),
        }  # fmt: skip
        for (model, version), series in list(self._models.items()):
            for (route, status), count in list(series.requests.items()):
                requests.add_metric([model, version, route, status], count)
            rows.add_metric([model, version], series.rows)
            executions.add_metric([model, version], series.executions)
            if series.batcher is not None:
                pending.add_metric([model, version], series.batcher.queued)
            for name, family in histograms.items():
                histogram: _Histogram = getattr(series, name)
                family.add_metric([model, version], histogram.buckets(), histogram.sum)
        yield from (requests, rows, executions, pending, *histograms.values())

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

"""Dynamic batching: concurrent requests gathered into one forward pass.

One worker thread runs the model; each request gets its own rows of the batch back. Requests that
queued during a forward pass go together as soon as it ends. A request that finds the model idle
waits up to `max_delay_ms` for others (or until `max_batch` rows are queued) when traffic is
concurrent (recent batches averaged more than one request), and goes at once when it is not: a
lone client pays no batching delay. The forward pass never runs on the event loop's thread: a
slow or stuck model must leave the server answering (health, 503s, timeouts). A request larger
than `max_batch` is split into pieces that are queued together and answered together, never
refused for its size. Past `max_queue` queued pieces, `submit` raises `QueueFull` at once (the
server answers 503 with Retry-After).

The average batch size is reported as Triton does: inferences (rows) / executions (forward passes).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


class QueueFull(Exception):
    """The queue holds `max_queue` pieces already; try again later."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"the model's queue is full; retry in {retry_after_s:.0f} s")
        self.retry_after_s = retry_after_s


class Model(Protocol):
    """What the batcher needs of a model (`modelworks.serve.model.ServedModel` is one)."""

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...


@dataclass
class BatchStats:
    """Counters since start: rows, forward passes, requests, and time spent queued and running."""

    requests: int = 0
    inferences: int = 0  # rows run through the model
    executions: int = 0  # forward passes
    queue_s: float = 0.0
    compute_s: float = 0.0
    failures: int = 0
    last_inference_ms: int = 0  # epoch milliseconds, as Triton's statistics

    @property
    def average_batch(self) -> float:
        return self.inferences / self.executions if self.executions else 0.0


@dataclass
class _Piece:
    inputs: dict[str, np.ndarray]
    rows: int
    future: asyncio.Future
    queued: float = field(default_factory=time.perf_counter)


Observer = Callable[[int, list[float], float], None]  # (batch rows, queue seconds per piece, compute seconds)


class DynamicBatcher:
    """Gathers concurrent `submit` calls into batches of at most `max_batch` rows; see the module docstring.

    `pad` ({input name: pad id}) lets inputs with a free second axis (token ids) of different
    lengths share a batch: shorter ones are right-padded. `observer` hears of every execution.
    """

    def __init__(
        self, model: Model, max_batch: int = 32, max_delay_ms: float = 5.0, max_queue: int = 256,
        *, pad: Mapping[str, int] | None = None, observer: Observer | None = None,
    ) -> None:  # fmt: skip
        if max_batch < 1 or max_queue < 1 or max_delay_ms < 0:
            raise ValueError("max_batch and max_queue must be at least 1 and max_delay_ms not negative")
        self.model = model
        self.max_batch = max_batch
        self.max_delay_s = max_delay_ms / 1000
        self.max_queue = max_queue
        self.pad = dict(pad or {})
        self.observer = observer
        self.stats = BatchStats()
        self._queue: deque[_Piece] = deque()
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="modelworks-batch")
        self._closing = False
        self._pieces_per_batch = 1.0  # moving average over recent executions

    @property
    def queued(self) -> int:
        return len(self._queue)

    def retry_after_s(self) -> float:
        """A rough time for the queue to drain: queued batches times the mean execution time, at least 1 s."""
        per_batch = self.stats.compute_s / self.stats.executions if self.stats.executions else 0.1
        return max(1.0, (len(self._queue) / self.max_batch + 1) * per_batch)

    async def submit(self, inputs: Mapping[str, np.ndarray], timeout_s: float | None = None) -> dict[str, np.ndarray]:
        """The model's outputs for `inputs` (a batch of rows), run together with other requests.

        Past `timeout_s` (queue and forward pass together) it raises TimeoutError and its rows still
        queued are skipped: a timer on the loop, not a task per request as `asyncio.wait_for` makes.
        """
        if self._closing:
            raise QueueFull(1.0)
        self._start()
        rows = len(next(iter(inputs.values())))
        pieces = max(1, -(-rows // self.max_batch))
        if len(self._queue) + pieces > self.max_queue:
            raise QueueFull(self.retry_after_s())
        loop = asyncio.get_running_loop()
        futures = []
        for start in range(0, max(rows, 1), self.max_batch):
            part = dict(inputs) if pieces == 1 else {n: x[start : start + self.max_batch] for n, x in inputs.items()}
            future = loop.create_future()
            self._queue.append(_Piece(part, min(self.max_batch, rows - start), future))
            futures.append(future)
        self.stats.requests += 1
        assert self._wake is not None
        self._wake.set()
        timer = None if timeout_s is None else loop.call_later(timeout_s, _expire, futures)
        try:
            results = [await futures[0]] if pieces == 1 else await asyncio.gather(*futures)
        except BaseException:
            for future in futures:
                future.cancel()  # a piece still queued is skipped
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if len(results) == 1:
            return results[0]
        return {name: np.concatenate([r[name] for r in results]) for name in results[0]}

    async def call(self, fn: Callable[[], Any]) -> Any:
        """`fn()` in the worker thread that runs the model (warm-up: per-thread runtime state is made there)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def close(self) -> None:
        """Finish every queued request, then stop the worker."""
        self._closing = True
        if self._worker is not None:
            assert self._wake is not None
            self._wake.set()
            await self._worker
        self._executor.shutdown(wait=True)

    # ------------------------------------------------------------------------------ worker

    def _start(self) -> None:
        if self._worker is None:
            self._wake = asyncio.Event()
            self._worker = asyncio.get_running_loop().create_task(self._run(), name="modelworks-batcher")

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            while not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
            # Concurrent traffic: wait for a full batch or for the oldest piece's delay to run out.
            deadline = self._queue[0].queued + self.max_delay_s
            while self._pieces_per_batch > 1.5 and self._rows_queued() < self.max_batch and not self._closing:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), left)
                except TimeoutError:
                    break
            batch = self._take()
            if batch:
                await self._execute(loop, batch)

    def _rows_queued(self) -> int:
        return sum(p.rows for p in self._queue if not p.future.done())

    def _take(self) -> list[_Piece]:
        batch: list[_Piece] = []
        rows = 0
        while self._queue and rows + self._queue[0].rows <= self.max_batch:
            piece = self._queue.popleft()
            if piece.future.done():  # cancelled: its request timed out or went away
                continue
            batch.append(piece)
            rows += piece.rows
        return batch

    async def _execute(self, loop: asyncio.AbstractEventLoop, batch: list[_Piece]) -> None:
        now = time.perf_counter()
        waits = [now - p.queued for p in batch]
        inputs = self._concat([p.inputs for p in batch])
        try:
            outputs = await loop.run_in_executor(self._executor, self.model.infer, inputs)
        except Exception as e:  # noqa: BLE001 - the model's failure goes to each request; the worker lives on
            self.stats.failures += 1
            for piece in batch:
                if not piece.future.done():
                    piece.future.set_exception(e)
            return
        compute = time.perf_counter() - now
        rows = sum(p.rows for p in batch)
        self._pieces_per_batch = 0.8 * self._pieces_per_batch + 0.2 * len(batch)
        self.stats.inferences += rows
        self.stats.executions += 1
        self.stats.queue_s += sum(waits)
        self.stats.compute_s += compute
        self.stats.last_inference_ms = int(time.time() * 1000)
        if self.observer is not None:
            self.observer(rows, waits, compute)
        start = 0
        for piece in batch:
            if not piece.future.done():
                piece.future.set_result({name: out[start : start + piece.rows] for name, out in outputs.items()})
            start += piece.rows

    def _concat(self, parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        if len(parts) == 1:
            return parts[0]
        joined = {}
        for name in parts[0]:
            arrays = [p[name] for p in parts]
            if name in self.pad and len({a.shape[1] for a in arrays}) > 1:
                width = max(a.shape[1] for a in arrays)
                arrays = [np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=self.pad[name]) for a in arrays]
            joined[name] = np.concatenate(arrays)
        return joined


def _expire(futures: list[asyncio.Future]) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(TimeoutError())


def stats_json(stats: BatchStats) -> dict[str, Any]:
    return {
        "requests": stats.requests, "inferences": stats.inferences, "executions": stats.executions,
        "average_batch": stats.average_batch, "queue_s": stats.queue_s, "compute_s": stats.compute_s,
    }  # fmt: skip

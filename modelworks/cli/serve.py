"""`modelworks serve`: one model on the Open Inference Protocol, on this machine, no database needed."""

from __future__ import annotations

from pathlib import Path

import typer

from modelworks.cli.output import say, user_errors
from modelworks.errors import UserError

app = typer.Typer()


@app.command()
@user_errors
def serve(
    path: Path = typer.Argument(..., help="a run folder, or an ONNX (or Triton) export folder, which needs no run"),
    runtime: str | None = typer.Option(
        None,
        "--runtime",
        help="torch (a run's weights) or onnx (an ONNX export); default: onnx for an export folder "
        "(or with --int8), else torch",
    ),  # fmt: skip
    int8: bool = typer.Option(False, "--int8", help="onnx: serve the export's model.int8.onnx"),
    precision: str = typer.Option(
        "fp32",
        "--precision",
        help="torch: fp32, or bf16 (autocast; several times faster at batch 32 on CPUs "
        "with AMX/AVX-512 BF16 and on GPUs, at bf16's rounding)",
    ),  # fmt: skip
    host: str = typer.Option("127.0.0.1", "--host", help="address to bind (0.0.0.0 exposes it to the network)"),
    port: int = typer.Option(8080, "--port"),
    name: str | None = typer.Option(None, "--name", help="model name in URLs (default: the run's name)"),
    max_batch: int = typer.Option(32, "--max-batch", help="rows per forward pass at most"),
    max_delay_ms: float = typer.Option(5.0, "--max-delay-ms", help="how long a request waits for others to batch with"),
    max_queue: int = typer.Option(256, "--max-queue", help="queued requests before answering 503"),
    threads: int | None = typer.Option(None, "--threads", help="intra-op threads (default: the runtime's own)"),
    timeout: float = typer.Option(30.0, "--timeout", help="seconds per request, queue and forward pass"),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda"),
) -> None:
    """Serve a trained model: OIP v2 (/v2/models/NAME/infer, JSON and binary) and /v2/models/NAME/predict."""
    from modelworks.serve.app import ServeLimits, create_app
    from modelworks.serve.model import ServedModel
    from modelworks.serve.modelset import ModelSet, deploy
    from modelworks.serve.server import serve as run_server
    from modelworks.store.export import is_export

    if runtime is None:
        runtime = "onnx" if int8 or is_export(path) else "torch"
    if runtime not in ("torch", "onnx"):
        raise UserError(f"--runtime must be torch or onnx; got {runtime!r}")
    if int8 and runtime != "onnx":
        raise UserError("--int8 needs --runtime onnx")
    if max_batch < 1 or max_queue < 1 or max_delay_ms < 0 or timeout <= 0:
        raise UserError("--max-batch and --max-queue must be at least 1, --max-delay-ms and --timeout positive")
    model = ServedModel.load(
        path, runtime=runtime, device=device, threads=threads, name=name, int8=int8, precision=precision,  # type: ignore[arg-type]
    )  # fmt: skip
    models = ModelSet.of(deploy(model, max_batch, max_delay_ms, max_queue))
    app = create_app(models, limits=ServeLimits(timeout_s=timeout))
    form = " ".join(x for x in (runtime, "int8" if int8 else "", "" if precision == "fp32" else precision) if x)
    say(
        f"serving {model.name} ({form}) "
        f"on http://{host}:{port}/v2/models/{model.name} "
        f"(infer, predict); metrics on /metrics; Ctrl-C or SIGTERM stops after the requests in flight"
    )
    run_server(app, host=host, port=port)

"""Training-loop overhead: modelworks' `fit` against a hand-written PyTorch loop.

Same model (the registry's CNN), same initial weights, same data in memory, same batch size,
seed and per-epoch data order, same optimizer. Each variant runs in its own process so that peak
memory (GPU: max allocated; CPU: peak RSS) is its own. Prints a Markdown table and writes JSON
to bench/results/.

    python bench/train_overhead.py                      # Fashion-MNIST if installed, else synthetic
    python bench/train_overhead.py --device cuda --epochs 5 --rows 60000
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch


def load_data(rows: int, source: str) -> tuple[dict[str, torch.Tensor], object]:
    from modelworks.config.schema import DataConfig, ImageFeature
    from modelworks.data.preprocess import Preprocessor
    from modelworks.data.sources import read_source

    if source == "synthetic":
        g = torch.Generator().manual_seed(0)
        y = torch.randint(0, 10, (rows,), generator=g)
        x = torch.rand(rows, 1, 28, 28, generator=g) * 0.5 + y.view(-1, 1, 1, 1) / 20
        from modelworks.data.schema import InputSchema

        return {"image.image": x, "target": y}, InputSchema(
            task="multiclass", num_classes=10, image={"image": (1, 28, 28)}
        )
    cfg = DataConfig(source="builtin:fashion-mnist", features=[ImageFeature(name="image")], limit=rows)
    loaded = read_source(cfg, Path.cwd())
    pre = Preprocessor(cfg.features, loaded.target, "multiclass").fit(loaded.frame)
    return pre.transform(loaded.frame), pre.schema_


def run_variant(variant: str, args: argparse.Namespace) -> dict:
    from modelworks.config.schema import CheckpointConfig, TrainConfig
    from modelworks.data.batches import TensorBatches
    from modelworks.models import build_model
    from modelworks.models.cnn import CNNConfig
    from modelworks.training.callbacks import Callback
    from modelworks.training.distributed import World
    from modelworks.training.loop import fit

    device = torch.device(args.device)
    tensors, schema = load_data(args.rows, args.source)
    torch.manual_seed(0)
    model = build_model(CNNConfig(), schema).to(device)
    cfg = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=1e-3,
        progress=False,
        checkpoint=CheckpointConfig(every_seconds=None),
        precision=args.precision,
        seed=0,
    )
    data = TensorBatches(tensors)
    epoch_times: list[float] = []
    losses: list[float] = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    if variant == "modelworks":

        class Timer(Callback):
            def on_train_begin(self, state):
                self.t = time.perf_counter()

            def on_epoch_end(self, state, logs):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                now = time.perf_counter()
                epoch_times.append(now - self.t)
                losses.append(logs["train_loss"])
                self.t = time.perf_counter()

        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            fit(model, data, None, cfg, schema, device=device, world=World(), run_dir=Path(tmp), callbacks=[Timer()])
    else:  # the hand-written loop a PyTorch user would write
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = torch.nn.CrossEntropyLoss()
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16")
        for epoch in range(args.epochs):
            t = time.perf_counter()
            model.train()
            total = torch.zeros((), device=device)
            count = 0
            for batch in data.iterate(args.batch_size, shuffle=True, seed=0, epoch=epoch):
                x = batch["image.image"].to(device, non_blocking=True)
                y = batch["target"].to(device, non_blocking=True)
                with autocast:
                    out = model({"image.image": x})
                loss = loss_fn(out.float(), y)
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                total += loss.detach()
                count += 1
            mean = (total / count).item()
            if device.type == "cuda":
                torch.cuda.synchronize()
            epoch_times.append(time.perf_counter() - t)
            losses.append(mean)
    peak = (
        torch.cuda.max_memory_allocated()
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    return {"variant": variant, "epoch_s": epoch_times, "loss": losses, "peak_bytes": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--source", default="auto", choices=["auto", "fashion-mnist", "synthetic"])
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.source == "auto":
        args.source = "fashion-mnist" if Path("/usr/share/datasets/fashion-mnist").exists() else "synthetic"
    if args.variant:
        print(json.dumps(run_variant(args.variant, args)))
        return
    results = {}
    for variant in ("baseline", "modelworks", "baseline", "modelworks"):  # interleaved, best of two
        cmd = [sys.executable, __file__, "--variant", variant] + [
            f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k != "variant"
        ]
        out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        # skip the first epoch (warm-up: allocator, cuDNN autotuning) when there are more
        steady = out["epoch_s"][1:] or out["epoch_s"]
        out["median_epoch_s"] = statistics.median(steady)
        if variant not in results or out["median_epoch_s"] < results[variant]["median_epoch_s"]:
            results[variant] = out
    base, ours = results["baseline"], results["modelworks"]
    time_ratio = ours["median_epoch_s"] / base["median_epoch_s"]
    mem_ratio = ours["peak_bytes"] / base["peak_bytes"]
    loss_diff = max(abs(a - b) for a, b in zip(base["loss"], ours["loss"], strict=False))
    summary = {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
        "data": args.source,
        "rows": args.rows,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "precision": args.precision,
        "epoch_s": {"baseline": base["median_epoch_s"], "modelworks": ours["median_epoch_s"]},
        "epoch_time_ratio": time_ratio,
        "peak_memory_bytes": {"baseline": base["peak_bytes"], "modelworks": ours["peak_bytes"]},
        "peak_memory_ratio": mem_ratio,
        "loss": {"baseline": base["loss"], "modelworks": ours["loss"]},
        "max_epoch_loss_difference": loss_diff,
    }
    print("| device | epoch s (hand loop) | epoch s (modelworks) | time ratio | peak mem ratio | max loss diff |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {summary['device']} | {base['median_epoch_s']:.3f} | {ours['median_epoch_s']:.3f} | {time_ratio:.3f} | {mem_ratio:.3f} | {loss_diff:.2e} |"
    )
    out_dir = Path(__file__).parent / "results"
    out_dir.mkdir(exist_ok=True)
    name = f"train_overhead-{args.device}-{args.precision}.json"
    (out_dir / name).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()

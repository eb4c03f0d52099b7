"""ONNX Runtime beside PyTorch: the rows issue 3's export adds to the compression bench.

For the same parents as `bench/compress.py` (a Fashion-MNIST CNN subset and MiniLM fine-tuned
with LoRA on a fortunes subset, trained with that script's recipes when no run is given), each
parent is exported with `modelworks.exporting` (ONNX, opset 18, plus onnxruntime's dynamic int8),
and three variants are timed in one process, taking turns, with the compression bench's harness
(`rows`: p50/p99 at batch 1 and 32 on this machine's CPU): PyTorch fp32 (adapters merged, as the
compression bench times it), onnxruntime fp32 and onnxruntime int8. Columns: size on disk and its
ratio, p50 latency and the speedup over PyTorch fp32, test accuracy and its change in points, and
agreement with PyTorch's predictions. Prints a Markdown table per model and writes
bench/results/export-<model>.json.

    python bench/export_onnx.py --threads 1                       # trains both parents first (CPU)
    python bench/export_onnx.py --cnn-run runs/bench-fmnist-... --text-run runs/bench-fortunes-minilm-...

`onnx_variants` is what `bench/compress.py`'s `extra_variants` hook can return to put these rows
in its own table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

sys.path.insert(0, str(Path(__file__).parent))
import compress as compress_bench  # noqa: E402  (the compression bench: parents, Variant, rows, markdown)

import modelworks  # noqa: E402
from modelworks.compression.measure import main_metrics, test_split  # noqa: E402
from modelworks.compression.method import float_copy  # noqa: E402
from modelworks.data.batches import TensorBatches  # noqa: E402
from modelworks.data.schema import TARGET  # noqa: E402
from modelworks.evaluate.metrics import compute_metrics  # noqa: E402
from modelworks.exporting.export import export_run  # noqa: E402
from modelworks.exporting.interface import OUTPUT, input_names  # noqa: E402
from modelworks.store.export import read_export  # noqa: E402
from modelworks.training.losses import outputs_to_predictions  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def onnx_variants(
    parent: modelworks.Run, test: TensorBatches, folder: Path, threads: int | None
) -> list[compress_bench.Variant]:
    """onnxruntime fp32 and int8 variants of `parent`, exported (and checked) into `folder`."""
    result = export_run(parent, "onnx", {"quantize": "int8"}, output=folder)
    names = input_names(parent.schema)
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    variants = []
    for label, file in (("onnxruntime fp32", result.file), ("onnxruntime int8", folder / result.record.quantized.file)):
        session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])

        def forward(batch: dict[str, torch.Tensor], session=session) -> np.ndarray:
            return session.run([OUTPUT], {name: batch[name].numpy() for name in names})[0]

        raw = np.concatenate([forward(b) for b in test.iterate(256)])  # (rows, classes)
        schema = parent.schema
        predictions = outputs_to_predictions(schema.task, torch.from_numpy(raw))
        metrics = compute_metrics(
            schema.task, test.tensors[TARGET].numpy(), predictions, schema.class_names, parent.config.evaluate.threshold
        )
        variants.append(
            compress_bench.Variant(
                label, forward, file.stat().st_size, main_metrics(schema.task, metrics), raw.argmax(1), str(file)
            )
        )
    return variants


def bench(label: str, parent: modelworks.Run, folder: Path, iterations: int, threads: int | None) -> dict[str, Any]:
    test = test_split(parent.splits(), parent.config)
    variants = [compress_bench.torch_variant("pytorch fp32", parent, float_copy(parent.model), test)]
    variants += onnx_variants(parent, test, folder, threads)
    export = read_export(folder)
    load_before = os.getloadavg()
    table = compress_bench.rows(variants, test, iterations)
    return {
        "model": label,
        "parent": str(parent.path),
        "export": str(folder),
        "test_rows": len(test),
        "rows": table,
        "export_check": export.check.model_dump(mode="json"),
        "int8": export.quantized.model_dump(mode="json", by_alias=True),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "onnxruntime_threads": threads or "default",
            "vnni": compress_bench._has_vnni(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "versions": export.versions,
        "iterations": iterations,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    compress_bench.add_parent_arguments(parser)
    parser.add_argument(
        "--threads", type=int, help="torch and onnxruntime intra-op threads (default: each library's choice)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    RESULTS.mkdir(exist_ok=True)
    jobs = []
    if args.only != "text":
        jobs.append(
            (
                "fashion-cnn",
                lambda: (
                    modelworks.load_run(args.cnn_run)
                    if args.cnn_run
                    else compress_bench.train_cnn(args.runs_dir, args.cnn_rows)
                ),
            )
        )
    if args.only != "cnn":
        jobs.append(
            (
                "minilm",
                lambda: (
                    modelworks.load_run(args.text_run)
                    if args.text_run
                    else compress_bench.train_minilm(
                        args.runs_dir, args.classes, args.per_class, args.max_length, args.text_epochs
                    )
                ),
            )
        )
    for label, make_parent in jobs:
        start = time.perf_counter()
        parent = modelworks.load_run(make_parent().path, device="cpu")
        folder = Path(args.runs_dir) / "bench-export" / f"{label}-onnx"
        result = bench(label, parent, folder, args.iterations, args.threads)
        result["wall_s"] = time.perf_counter() - start
        (RESULTS / f"export-{label}.json").write_text(json.dumps(result, indent=2) + "\n")
        machine = result["machine"]
        print(
            f"\n{label}: {result['test_rows']} test rows, {machine['threads']} torch / {machine['onnxruntime_threads']} "
            f"onnxruntime threads, VNNI {machine['vnni']}, load {machine['load_average_before'][0]:.1f}, "
            f"{result['wall_s']:.0f} s; export check: max abs diff {result['export_check']['max_abs_diff']:.1e} "
            f"over {result['export_check']['rows']} rows"
        )
        print(compress_bench.markdown(label, result["rows"]))


if __name__ == "__main__":
    main()

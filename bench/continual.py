"""Split Fashion-MNIST, class-incremental: how much a continuation forgets, and what replay saves.

Five experiences of two classes each ({0,1}, {2,3}, ... in label order), a small CNN (two conv
blocks of 16 and 32 filters, dense 64), all ten classes declared up front (``data.classes``) so the
head can output classes not seen yet. Every strategy runs through the engine (`modelworks.train`,
continuations with ``train.init_from``), the product as a user runs it:

- naive: each experience fine-tunes the previous run on its two classes only;
- replay-N: the same, with ``train.replay: {size: N, ratio, balanced_finetune_epochs}``: the
  parent's class-balanced buffer makes ``ratio`` of the continuation's rows (0.5: half of each
  batch on average), and a closing pass of a few epochs on the run's own buffer, every class seen
  so far equally, at ``lr * balanced_finetune_lr_factor`` evens out the bias toward the newest
  classes (balanced fine-tuning, as in GDumb and EEIL);
- replay-N-unbalanced: replay without the closing pass (what the pass adds);
- replay-N + ewc/l2: replay with ``train.parent_penalty``;
- joint: each experience retrains from scratch on every experience so far, with the same recipe
  and the first experience's epochs (the upper bound); its compute is every one of those retrainings.

Every run uses the fast image recipe of examples/fashion_mnist_fast.yaml that applies to this small
network: ``storage: uint8`` pixels, ``train.precision: bf16`` and ``train.speed.channels_last``
(``--precision fp32`` turns the last two off). Subsampled to fit minutes on 2 CPU cores:
``--train-per-class`` training rows and ``--test-per-class`` test rows per class from the official
splits. After each experience, accuracy on every experience's test rows gives the matrix a[t][j];
reported are the final average accuracy (mean_j a[T][j]) and the average forgetting (mean over
j < T of max_{t<T} a[t][j] - a[T][j]), with the wall time and the process CPU time of the training
calls (CPU time is the fairer compute measure on a shared machine). Writes bench/results/continual.json.

    python bench/continual.py --train-per-class 300 --test-per-class 200 --batch-size 32 --lr 5e-3 \
        --sizes 200,1000 --balanced-epochs 2 --balanced-lr-factor 0.5 \
        --only naive,replay-200,replay-1000,replay-1000-unbalanced,replay-1000+l2,joint
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import modelworks
from modelworks.data.builtins import FASHION_MNIST_DIR

RESULTS = Path(__file__).parent / "results"
EXPERIENCES = [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
MODEL = {
    "type": "cnn",
    "blocks": [{"filters": 16, "batch_norm": False}, {"filters": 32, "batch_norm": False}],
    "hidden": [64],
}


def write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> Path:
    """An MNIST-style images/labels pair (uint8) that `modelworks` reads as an IDX source."""
    folder.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    head = b"\x00\x00\x08\x03" + np.array([n, h, w], ">i4").tobytes()
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(head + images.astype(np.uint8).tobytes())
    labels_head = b"\x00\x00\x08\x01" + np.array([n], ">i4").tobytes()
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(labels_head + labels.astype(np.uint8).tobytes())
    return folder / f"{prefix}-images-idx3-ubyte"


def read_split(prefix: str) -> tuple[np.ndarray, np.ndarray]:
    def read(name: str) -> np.ndarray:
        raw = gzip.decompress((FASHION_MNIST_DIR / name).read_bytes())
        ndim = raw[3]
        dims = np.frombuffer(raw, ">i4", ndim, 4)
        return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)

    return read(f"{prefix}-images-idx3-ubyte.gz"), read(f"{prefix}-labels-idx1-ubyte.gz")


def build_data(root: Path, train_per_class: int, test_per_class: int, seed: int) -> dict[str, list[Path]]:
    """IDX folders: one per experience, one per joint prefix (experiences 1..k), one test file per experience."""
    rng = np.random.default_rng(seed)
    (xtr, ytr), (xte, yte) = read_split("train"), read_split("t10k")

    def pick(y: np.ndarray, classes: tuple[int, ...], per_class: int) -> np.ndarray:
        return np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in classes])

    train = [pick(ytr, e, train_per_class) for e in EXPERIENCES]
    test = [pick(yte, e, test_per_class) for e in EXPERIENCES]
    out: dict[str, list[Path]] = {"experience": [], "joint": [], "test": []}
    for k in range(len(EXPERIENCES)):
        for kind, rows in (("experience", train[k]), ("joint", np.concatenate(train[: k + 1]))):
            folder = root / f"{kind}{k + 1}"
            write_idx(folder, "train", xtr[rows], ytr[rows])
            tests = test[k] if kind == "experience" else np.concatenate(test[: k + 1])
            write_idx(folder, "t10k", xte[tests], yte[tests])
            out[kind].append(folder)
        out["test"].append(write_idx(root / "tests", f"exp{k + 1}", xte[test[k]], yte[test[k]]))
    return out


def strategies(sizes: list[int], args) -> dict[str, dict[str, Any]]:
    """name -> train settings added to every continuation (joint: retrained from scratch)."""
    found: dict[str, dict[str, Any]] = {"naive": {}}
    closing = {"balanced_finetune_epochs": args.balanced_epochs, "balanced_finetune_lr_factor": args.balanced_lr_factor}
    for size in sizes:
        found[f"replay-{size}"] = {"replay": {"size": size, "ratio": args.ratio, "holdout": 100, **closing}}
    mid = sizes[len(sizes) // 2]
    if args.balanced_epochs:  # the same without the closing balanced pass
        found[f"replay-{mid}-unbalanced"] = {"replay": {"size": mid, "ratio": args.ratio, "holdout": 100}}
    ewc = {"kind": "ewc", "weight": 1.0, "fisher_rows": 64}
    found[f"replay-{mid}+ewc"] = {**found[f"replay-{mid}"], "parent_penalty": ewc}
    found[f"replay-{mid}+l2"] = {**found[f"replay-{mid}"], "parent_penalty": {"kind": "l2", "weight": 0.01}}
    found["joint"] = {}
    return found


def run_strategy(name: str, extra: dict, data: dict[str, list[Path]], args, runs: Path) -> dict[str, Any]:
    """Train the five experiences; accuracy on every experience's test rows after each."""
    parent, seconds, cpu, matrix = None, 0.0, 0.0, []
    for k in range(len(EXPERIENCES)):
        joint = name == "joint"
        train = {
            "epochs": args.epochs if joint or k == 0 else args.continue_epochs,
            "batch_size": args.batch_size, "lr": args.lr, "device": "cpu", "progress": False, "seed": args.seed,
            "checkpoint": {"every_epochs": None}, "precision": args.precision,
            "speed": {"channels_last": args.precision == "bf16"},
            **({k2: v for k2, v in extra.items() if k2 == "replay"} if k == 0 else extra),
        }  # fmt: skip
        if parent is not None and not joint:
            train["init_from"] = str(parent.path)
        config = {
            "name": f"{name}-exp{k + 1}", "runs_dir": str(runs),
            "data": {"source": str(data["joint" if joint else "experience"][k]), "classes": [str(c) for c in range(10)],
                     "features": [{"name": "image", "type": "image", "storage": "uint8"}]},
            "model": MODEL, "train": train, "evaluate": {"baselines": []},
        }  # fmt: skip
        started, cpu_started = time.perf_counter(), time.process_time()
        parent = modelworks.train(config)
        seconds += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
        matrix.append([parent.evaluate(data=str(t))["accuracy"] for t in data["test"]])
        print(f"  {name} exp{k + 1}: " + " ".join(f"{a:.3f}" for a in matrix[-1]), flush=True)
    last = len(EXPERIENCES) - 1
    final = float(np.mean(matrix[last]))
    forgetting = float(np.mean([max(matrix[t][j] for t in range(j, last)) - matrix[last][j] for j in range(last)]))
    return {
        "final_accuracy": final,
        "forgetting": forgetting,
        "train_seconds": seconds,
        "train_cpu_seconds": cpu,
        "accuracy_matrix": matrix,
    }


def write(args, load: tuple[float, ...], results: dict[str, Any]) -> None:
    record = {
        "settings": vars(args), "model": MODEL, "experiences": EXPERIENCES,
        "machine": {"cpus": os.cpu_count(), "torch_threads": args.threads, "platform": platform.platform(),
                    "loadavg_start": load, "loadavg_end": os.getloadavg()},
        "results": results,
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / args.out
    out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-per-class", type=int, default=600)
    parser.add_argument("--test-per-class", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=4, help="from scratch: the first experience and joint")
    parser.add_argument("--continue-epochs", type=int, default=2, help="each continuation")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", default="continual.json", help="file name under bench/results")
    parser.add_argument("--sizes", default="200,500,1000", help="replay buffer sizes")
    parser.add_argument("--ratio", type=float, default=0.5, help="replay share of a continuation's rows")
    parser.add_argument("--balanced-epochs", type=int, default=2, help="replay.balanced_finetune_epochs")
    parser.add_argument("--balanced-lr-factor", type=float, default=0.1, help="replay.balanced_finetune_lr_factor")
    parser.add_argument("--only", default=None, help="comma-separated strategy names")
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16"], help="bf16: with channels-last")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = build_data(Path(tmp) / "data", args.train_per_class, args.test_per_class, args.seed)
        found = strategies([int(s) for s in args.sizes.split(",")], args)
        for name, extra in found.items():
            if args.only and name not in args.only.split(","):
                continue
            results[name] = run_strategy(name, extra, data, args, Path(tmp) / "runs")
            write(args, load, results)  # after each strategy: a run cut short keeps what finished
    joint = results.get("joint")
    for r in results.values():
        if joint:
            r["points_below_joint"] = 100 * (joint["final_accuracy"] - r["final_accuracy"])
            r["compute_vs_joint"] = r["train_seconds"] / joint["train_seconds"]
            r["cpu_vs_joint"] = r["train_cpu_seconds"] / joint["train_cpu_seconds"]
    print("\n| strategy | final avg accuracy | avg forgetting | wall (s) | CPU (s) | CPU vs joint |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        versus = f"{r['cpu_vs_joint']:.2f}x" if joint else "-"
        print(f"| {name} | {r['final_accuracy']:.3f} | {r['forgetting']:.3f} | {r['train_seconds']:.0f} "
              f"| {r['train_cpu_seconds']:.0f} | {versus} |")  # fmt: skip
    write(args, load, results)


if __name__ == "__main__":
    main()

"""Pruned against unpruned hyperparameter search: wall time and the best validation metric.

Both searches run the same experiment (an MLP on a Fashion-MNIST subset by default), the same
search space, the same number of trials and the same TPE sampler seed; one never prunes, the
other stops poor trials from the validation accuracy reported every epoch. Each search runs in
its own process, one after the other, with the same torch thread count; wall and CPU time are
measured around `modelworks.tuning` alone (imports excluded). The CPU time is the fairer figure
on a machine that other work shares (wall time then depends on what else ran meanwhile). Prints
a Markdown table and writes JSON to bench/results/.

Goal (issue 3): the pruned search reaches the unpruned search's best validation metric within
0.5 points in at most 1/3 of the wall time, with the same number of trials.

    python bench/tune_pruning.py                                  # ~7 minutes on 2 CPU cores
    python bench/tune_pruning.py --pruner hyperband --trials 30 --epochs 30
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPACE = {
    "train.lr": {"loguniform": [1.0e-5, 1.0e-1]},
    "train.optimizer.type": {"choice": ["sgd", "adam"]},
    "model.hidden": {"choice": [[64], [256], [256, 256]]},
    "model.dropout": {"uniform": [0.0, 0.5]},
}


def experiment(args: argparse.Namespace, pruner: str, runs_dir: str) -> dict:
    data = {
        "source": f"builtin:{args.source}",
        "features": [{"name": "image", "type": "image"}],
        "split": {"validation": 0.25, "test": 0.1, "seed": 42},
    }
    if args.rows:
        data["limit"] = args.rows
    return {
        "name": f"bench-{pruner}",
        "runs_dir": runs_dir,
        "data": data,
        "model": {"type": "mlp", "hidden": [128]},
        "train": {"epochs": args.epochs, "batch_size": 128, "seed": 0},
        "tune": {
            "space": SPACE,
            "trials": args.trials,
            "sampler": "tpe",
            "seed": args.seed,
            "pruner": {
                "type": pruner,
                "startup_trials": args.startup_trials,
                "warmup_epochs": args.warmup_epochs,
                "min_epochs": args.min_epochs,
                "reduction_factor": 3,
            },
        },
    }


def run_variant(pruner: str, args: argparse.Namespace) -> dict:
    import torch

    import modelworks

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        config = experiment(args, pruner, tmp)
        started, cpu_started = time.perf_counter(), time.process_time()
        result = modelworks.tune(config)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        frame = result.trials
        best_report = json.loads((result.best_run / "report.json").read_text())
        return {
            "pruner": pruner,
            "wall_s": wall,
            "cpu_s": cpu,
            "best_value": result.best_value,
            "best_trial": result.best_trial,
            "best_params": result.best_params,
            "best_run_test_accuracy": best_report["summary"].get("accuracy"),
            "states": frame["state"].value_counts().to_dict(),
            "epochs_trained": int(frame["epochs"].fillna(0).sum()),
            "trials": json.loads(frame.drop(columns=["run"]).to_json(orient="records")),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="fashion-mnist", choices=["fashion-mnist", "digits"])
    parser.add_argument("--rows", type=int, default=12000, help="first N rows of the data set (0: all)")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--pruner", default="successive_halving", choices=["median", "hyperband", "successive_halving"])
    parser.add_argument("--startup-trials", type=int, default=5, help="median pruner")
    parser.add_argument("--warmup-epochs", type=int, default=2, help="median pruner")
    parser.add_argument("--min-epochs", type=int, default=1, help="hyperband / successive halving: first rung")
    parser.add_argument("--seed", type=int, default=0, help="TPE sampler seed, the same for both searches")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (tiny models run fastest on one)")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args)))
        return
    results = {}
    for pruner in ("none", args.pruner):
        cmd = [sys.executable, __file__, "--variant", pruner] + [
            f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k != "variant"
        ]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"the {pruner} search failed:\n{out.stderr}")
        results[pruner] = json.loads(out.stdout.splitlines()[-1])
    full, pruned = results["none"], results[args.pruner]
    ratio = pruned["wall_s"] / full["wall_s"]
    cpu_ratio = pruned["cpu_s"] / full["cpu_s"]
    gap = 100 * (full["best_value"] - pruned["best_value"])  # points of accuracy the pruned search is behind
    summary = {
        "data": f"{args.source} (first {args.rows} rows)" if args.rows else args.source,
        "model": "mlp",
        "space": SPACE,
        "trials": args.trials,
        "epochs": args.epochs,
        "sampler": "tpe",
        "seed": args.seed,
        "threads": args.threads,
        "pruner": args.pruner,
        "wall_time_ratio": ratio,
        "cpu_time_ratio": cpu_ratio,
        "best_gap_points": gap,
        "load_average_after": os.getloadavg(),
        "goal_met": ratio <= 1 / 3 and gap <= 0.5,
        "unpruned": full,
        "pruned": pruned,
    }
    print(
        f"{summary['data']}, MLP, {args.trials} trials x up to {args.epochs} epochs, TPE seed {args.seed}, {args.threads} torch thread(s)\n"
    )
    print(
        "| search | trials complete / pruned | epochs trained | wall s | CPU s | best val_accuracy | test accuracy of best run |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, r in (("unpruned", full), (f"pruned ({args.pruner})", pruned)):
        states = r["states"]
        print(
            f"| {name} | {states.get('COMPLETE', 0)} / {states.get('PRUNED', 0)} | {r['epochs_trained']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} "
            f"| {r['best_value']:.4f} | {r['best_run_test_accuracy']:.4f} |"
        )
    print(
        f"\nwall-time ratio (pruned / unpruned): {ratio:.3f} (goal <= 0.333); CPU-time ratio: {cpu_ratio:.3f}; "
        f"best val_accuracy gap: {gap:+.2f} points (goal <= 0.5); goal met: {summary['goal_met']}"
    )
    out_dir = Path(__file__).parent / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / f"tune_pruning-{args.source}-{args.pruner}.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()

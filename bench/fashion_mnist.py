"""Fashion-MNIST from the command line: wall time, CPU time and test accuracy of `modelworks train`.

Runs the CLI on an example (default: examples/fashion_mnist_fast.yaml) in a child process, the way
a user would, and times it from the command's start to its report: start-up, data loading,
training, evaluation, baselines and the report all count. CPU time is the child's user + system
time. The machine's load average is recorded beside the figures, since other work on the cores
slows a run. Results are appended to bench/results/fashion_mnist.json.

    python bench/fashion_mnist.py                                    # the fast example, as shipped
    python bench/fashion_mnist.py --example examples/fashion_mnist_cnn.yaml
    python bench/fashion_mnist.py --set train.epochs=2 --set data.limit=14000 --label short  # a quick try
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "fashion_mnist.json"


def run_cli(example: Path, overrides: list[str], runs_dir: Path) -> dict:
    """One `modelworks train --json` in a child process: its summary, wall seconds and CPU seconds."""
    command = [sys.executable, "-m", "modelworks", "train", str(example), "--json", "--set", f"runs_dir={runs_dir}"]
    for override in overrides:
        command += ["--set", override]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = os.getloadavg()
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"modelworks train failed ({done.returncode}):\n{done.stderr[-4000:]}")
    summary = json.loads(done.stdout)
    report = json.loads((Path(summary["run"]) / "report.json").read_text(encoding="utf-8"))
    return {
        "wall_s": round(wall, 1),
        "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1),
        "test_accuracy": summary["summary"]["accuracy"],
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "training_s": _training_seconds(Path(summary["run"])),
        "baselines_s": {b["name"]: b.get("seconds") for b in (report.get("baselines") or {}).get("results", [])},
        "parameters": (report.get("extra") or {}).get("parameters"),
    }


def _training_seconds(run: Path) -> float | None:
    """The fit's own time: the last epoch record's elapsed seconds."""
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"epoch"' in line]
    epochs = [e for e in epochs if e.get("kind") == "epoch"]
    return epochs[-1]["elapsed_s"] if epochs else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--example", type=Path, default=ROOT / "examples" / "fashion_mnist_fast.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="a config override, repeatable")
    parser.add_argument("--label", default=None, help="a name for this measurement in the results file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mw-fashion-") as runs_dir:
        result = run_cli(args.example.resolve(), args.overrides, Path(runs_dir))
    import torch

    record = {
        "label": args.label or args.example.stem,
        "example": str(args.example.resolve().relative_to(ROOT)),
        "overrides": args.overrides,
        **result,
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    sys.path.insert(0, str(ROOT))
    from modelworks.store.atomic import atomic_write_text

    previous = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else []
    atomic_write_text(RESULTS, json.dumps([*previous, record], indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(record, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()

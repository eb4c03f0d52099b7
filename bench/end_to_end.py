"""Small jobs end to end: `modelworks train` against a hand-written PyTorch script doing the same work.

For each data set, the whole command as a user runs it (start-up, data, 50 epochs with validation
after each, the test split, report.html and the baselines) against the script in bench/scripts/
(the same split, scaling, MLP 50-50, Adam 1e-3, batch 32, 50 epochs, per-epoch validation loss
and accuracy, test accuracy; no report). The two alternate, each run a fresh process; the medians
of wall time, CPU time (user + system) and peak RSS of each are compared as ratios. Also times
`modelworks --help` and `modelworks init`. Writes bench/results/end_to_end.json.

Both sides run as after `pip install`, which compiles every module to bytecode: the children get a
bytecode cache (PYTHONPYCACHEPREFIX, a folder in the system's temp directory, so nothing is written
into the environment) even where PYTHONDONTWRITEBYTECODE is set, and one unmeasured run of each
command fills it first. Without a cache each process compiles every module it imports from source
(about 2 s of a hand script's 6 on a 2-core machine), a cost no installed package pays;
`--no-bytecode-cache` measures that case.

    python bench/end_to_end.py                     # both data sets, 3 runs of each command
    python bench/end_to_end.py --runs 5 --data breast_cancer
    python bench/end_to_end.py --threads 1          # both sides on one thread (a busy machine)
    python bench/end_to_end.py --no-bytecode-cache  # every process compiles its imports from source
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "breast_cancer_mlp.yaml"
DATA = {  # data set -> (the CLI's extra overrides, the hand-written script)
    "breast_cancer": ([], ROOT / "bench" / "scripts" / "breast_cancer_mlp.py"),
    "digits": (
        ["--set", "data.source=builtin:digits", "--set", "name=digits_mlp"], ROOT / "bench" / "scripts" / "digits_mlp.py"
    ),
}  # fmt: skip
ENV = dict(os.environ)  # the children's environment; --threads and the bytecode cache are set in it
PYCACHE = Path(tempfile.gettempdir()) / "modelworks-bench-pycache"
ACCURACY = re.compile(r"test (?:split: )?accuracy (\d\.\d+)")


def measure(command: list[str], cwd: Path) -> dict[str, float | None]:
    """Wall time, CPU time and peak RSS of one child process (its own rusage, from wait4)."""
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({child.returncode}):\n{output[-3000:]}")
    found = ACCURACY.search(output)
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
        "test_accuracy": float(found.group(1)) if found else None,
    }


def medians(runs: list[dict[str, float | None]]) -> dict[str, float]:
    keys = ("wall_s", "cpu_s", "peak_rss_mb")
    return {k: round(statistics.median(r[k] for r in runs), 3) for k in keys}


def compare(name: str, runs: int, workdir: Path) -> dict:
    overrides, script = DATA[name]
    cli = [sys.executable, "-m", "modelworks", "train", str(EXAMPLE), "--set", f"runs_dir={workdir}", *overrides]
    hand = [sys.executable, str(script)]
    results: dict[str, list] = {"modelworks": [], "hand": []}
    for command in (cli, hand):  # unmeasured: fills the bytecode cache and the file cache
        measure(command, workdir)
    for i in range(runs):  # alternate, the order flipped every other round
        pair = [("modelworks", cli), ("hand", hand)]
        for variant, command in pair if i % 2 == 0 else pair[::-1]:
            results[variant].append(measure(command, workdir))
            print(f"{name} run {i + 1} {variant}: {results[variant][-1]}", flush=True)
    mw, hw = medians(results["modelworks"]), medians(results["hand"])
    ratios = {k.removesuffix("_s").removesuffix("_mb"): round(mw[k] / hw[k], 3) for k in mw}
    return {"modelworks": {"runs": results["modelworks"], "median": mw},
            "hand": {"runs": results["hand"], "median": hw}, "ratio": ratios}  # fmt: skip


def startup(runs: int, workdir: Path) -> dict[str, float]:
    """Median wall time of the commands that should answer at once."""
    commands = {"--help": ["--help"], "init": ["init", "tabular-classification"]}
    out = {}
    for label, args in commands.items():
        measure([sys.executable, "-m", "modelworks", *args], workdir)  # unmeasured, as in `compare`
        times = [measure([sys.executable, "-m", "modelworks", *args], workdir)["wall_s"] for _ in range(runs)]
        out[label] = round(statistics.median(times), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", nargs="+", choices=list(DATA), default=list(DATA))
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for both sides")
    parser.add_argument("--no-bytecode-cache", action="store_true", help="compile every import from source")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "end_to_end.json")
    args = parser.parse_args()
    if args.threads:
        ENV["OMP_NUM_THREADS"] = str(args.threads)
    if args.no_bytecode_cache:
        ENV["PYTHONDONTWRITEBYTECODE"] = "1"
        ENV["PYTHONPYCACHEPREFIX"] = str(PYCACHE / "absent")  # never written: no .pyc is found or made
    else:
        ENV.pop("PYTHONDONTWRITEBYTECODE", None)
        ENV["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        result = {
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "threads": args.threads},
            "bytecode_cache": not args.no_bytecode_cache,
            "command": " ".join(["python", "bench/end_to_end.py", *sys.argv[1:]]),
            "load_average_before": [round(v, 2) for v in load_before],
            "startup_wall_s": startup(max(args.runs, 3), workdir),
            "data": {name: compare(name, args.runs, workdir) for name in args.data},
        }
    result["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nstart-up (median wall): {result['startup_wall_s']}")
    print("| data | modelworks wall / CPU s / peak MB | hand script | ratio wall / CPU / peak memory |")
    print("|---|---|---|---|")
    for name, r in result["data"].items():
        m, h, q = r["modelworks"]["median"], r["hand"]["median"], r["ratio"]
        print(
            f"| {name} | {m['wall_s']:.2f} / {m['cpu_s']:.2f} / {m['peak_rss_mb']:.0f} | "
            f"{h['wall_s']:.2f} / {h['cpu_s']:.2f} / {h['peak_rss_mb']:.0f} | "
            f"{q['wall']:.2f}x / {q['cpu']:.2f}x / {q['peak_rss']:.2f}x |"
        )
    print(f"load average before {result['load_average_before']}, after {result['load_average_after']}")


if __name__ == "__main__":
    main()

"""The run folder: one self-describing directory per training run.

=========================  ==========================================================
file                       holds
=========================  ==========================================================
``config.yaml``            the fully resolved experiment config (every default chosen)
``model.safetensors``      the trained weights
``preprocess.json``        fitted preprocessing state and the model's input schema
``metrics.jsonl``          step and epoch records, appended as training goes
``checkpoint.safetensors`` model, optimizer, schedule, RNG and counters for ``--resume``
``report.json/.html``      the evaluation report
``environment.json``       package versions, device, git commit
=========================  ==========================================================
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from modelworks.errors import UserError
from modelworks.store.atomic import atomic_write_text

from modelworks.store.files import CHECKPOINT, CONFIG, ENVIRONMENT, METRICS, PREPROCESS, REPORT_JSON, WEIGHTS  # noqa: F401


def create_run_dir(runs_dir: Path, name: str) -> Path:
    """A new, unique folder ``runs_dir/NAME-YYYYmmdd-HHMMSS[-k]``."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for k in range(1000):
        path = runs_dir / (f"{name}-{stamp}" + (f"-{k}" if k else ""))
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise UserError(f"cannot create a new run folder in {runs_dir}")


def find_run(ref: str | Path, runs_dir: Path = Path("runs")) -> Path:
    """A run folder from a path, or a name (or unique prefix) under `runs_dir`."""
    path = Path(ref)
    if not (path / CONFIG).exists():
        is_name = len(path.parts) == 1 and not any(c in str(ref) for c in "*?[")  # a path is not a name prefix
        candidates = sorted(p for p in runs_dir.glob(f"{ref}*") if (p / CONFIG).exists()) if is_name and runs_dir.exists() else []
        if len(candidates) > 1 and not any(c.name == str(ref) for c in candidates):
            names = ", ".join(c.name for c in candidates[:5])
            raise UserError(f"run {str(ref)!r} is ambiguous in {runs_dir}: {names}")
        if not candidates:
            raise UserError(f"no run at {str(ref)!r}: expected a run folder holding {CONFIG}")
        path = candidates[-1]
    return path


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=True) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path} is missing: the run folder is incomplete (did training finish?)") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON (line {e.lineno}): the run folder is damaged") from None


class MetricsLog:
    """Append-only JSONL of training records; each line is flushed as it is written."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled

    def append(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read(self) -> list[dict[str, Any]]:
        """The records in order; ``[]`` if there is no log yet.

        A last line that does not parse is skipped: it is what a process killed mid-write leaves.
        A bad line anywhere else means the file is damaged and raises `UserError`.
        """
        if not self.path.exists():
            return []
        lines = self.path.read_bytes().decode("utf-8", errors="replace").splitlines()
        records: list[dict[str, Any]] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
            except ValueError as e:
                if number == len(lines):
                    break  # truncated by a killed writer
                raise UserError(f"{self.path} line {number} is not a JSON object ({e}); the metrics log is damaged") from None
            records.append(record)
        return records

    def truncate_after(self, step: int) -> None:
        """Drop records logged after `step` (they are redone when a run resumes from a checkpoint)."""
        if self.enabled and self.path.exists():
            keep = [r for r in self.read() if r.get("step", 0) <= step]
            atomic_write_text(self.path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in keep))


def environment_info(device: str) -> dict[str, Any]:
    """What produced a run: versions, platform, device, and the git commit of the working folder."""
    packages = {}
    for name in ("modelworks", "torch", "numpy", "pandas", "scikit-learn", "tokenizers", "transformers", "peft", "safetensors"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    import torch

    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": packages,
        "device": device,
        "cuda_device": torch.cuda.get_device_name() if device.startswith("cuda") else None,
        "git_commit": commit,
        "argv": sys.argv,
        "unix_time": time.time(),
    }

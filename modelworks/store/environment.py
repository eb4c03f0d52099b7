"""``environment.json``: what produced a run (versions, platform, device, git commit), declared once."""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from pydantic import Field

from modelworks.store.files import ENVIRONMENT
from modelworks.store.jsonfile import Stored, read_model, write_model

PACKAGES = (
    "modelworks", "torch", "numpy", "pandas", "scikit-learn", "tokenizers", "transformers", "peft", "safetensors",
)  # fmt: skip


class Environment(Stored):
    """The versions, platform and device a run was made with."""

    created: str
    python: str
    platform: str
    packages: dict[str, str | None] = Field(description="installed version of each package, None if absent")
    device: str
    cuda_device: str | None = None
    git_commit: str | None = Field(None, description="HEAD of the git checkout the process ran in, if any")
    argv: list[str] = Field(default_factory=list)
    unix_time: float
    world_size: int = Field(1, ge=1, description="processes that trained the run (data parallel)")

    @classmethod
    def capture(cls, device: str, world_size: int = 1, cuda_device: str | None = None) -> Environment:
        """This process's environment; `cuda_device` names the GPU when `device` is one."""
        packages = {}
        for name in PACKAGES:
            try:
                packages[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                packages[name] = None
        return cls(
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            python=sys.version.split()[0],
            platform=platform.platform(),
            packages=packages,
            device=device,
            cuda_device=cuda_device,
            git_commit=_git_commit(),
            argv=list(sys.argv),
            unix_time=time.time(),
            world_size=world_size,
        )


def _git_commit() -> str | None:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def read_environment(run_dir: Path) -> Environment:
    return read_model(Path(run_dir) / ENVIRONMENT, Environment)


def write_environment(run_dir: Path, environment: Environment) -> None:
    write_model(Path(run_dir) / ENVIRONMENT, environment)

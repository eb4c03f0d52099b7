"""The old home of the engine's orchestration, kept so that modules not yet moved keep working.

The engine now lives in `modelworks.engine` (resolve, train, run, cv) and the run folder's typed
view in `modelworks.store.run`; callers outside the engine use the facade, `modelworks.api`.
`train` and `load_run` here default the base folder to the current directory, as the facade does.
Remove this module once tuning, compression and exporting import from `modelworks.api`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelworks.engine import run as _run
from modelworks.engine import train as _train
from modelworks.engine.cv import cross_validate
from modelworks.engine.resolve import Prepared, prepare, resolve
from modelworks.engine.run import Run

__all__ = ["Prepared", "Run", "cross_validate", "load_run", "prepare", "resolve", "train"]


def train(config: Any, **kwargs: Any) -> Run | None:
    """`modelworks.engine.train.train`, relative paths starting from the current directory."""
    return _train.train(config, **{"base_dir": Path.cwd(), **kwargs})


def load_run(ref: str | Path, *args: Any, **kwargs: Any) -> Run:
    """`modelworks.engine.run.load_run`, relative paths starting from the current directory."""
    return _run.load_run(ref, *args, **{"base_dir": Path.cwd(), **kwargs})

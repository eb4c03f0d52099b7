"""``metrics.jsonl``: the training log, one JSON object per line, appended as training goes.

The trainer logs ``{"kind": "step", "step", "epoch", "loss", "lr"}`` every few optimizer steps and
``{"kind": "epoch", "epoch", "step", "lr", "elapsed_s", "train_loss", "val_loss", "val_<metric>",
...}`` once per epoch. Each line is read back as a `TrainingRecord`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, ValidationError

from modelworks.errors import UserError
from modelworks.store.atomic import atomic_write_text
from modelworks.store.jsonfile import Stored, dumps


class TrainingRecord(Stored):
    """One line of the log; metrics beyond the declared fields (``val_accuracy``, ...) are kept as
    extra fields, read with `metric` or ``record["val_accuracy"]``."""

    model_config = ConfigDict(extra="allow")

    kind: Literal["step", "epoch"] | None = None
    step: int | None = None
    epoch: int | None = None
    lr: float | None = None
    loss: float | None = None
    train_loss: float | None = None
    val_loss: float | None = None
    elapsed_s: float | None = None

    @property
    def is_epoch(self) -> bool:
        return self.kind == "epoch"

    def metric(self, name: str) -> Any:
        """The logged value of `name` (e.g. ``val_accuracy``); None if this record has none."""
        return self.get(name)

    def metric_names(self) -> list[str]:
        """The names this record logged a value for."""
        return self.keys()


class MetricsLog:
    """Append-only JSONL of training records.

    Each line reaches the file as it is written (readers such as the UI see it at once, and a
    killed process loses nothing it logged); `sync` makes the lines durable against a machine
    crash too. The training loop syncs before each checkpoint, so a checkpoint never covers steps
    whose records a crash could lose, and once at the end: one fsync per checkpoint rather than
    one per line (each waits for the disk).
    """

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled

    def append(self, record: dict[str, Any] | TrainingRecord) -> None:
        if not self.enabled:
            return
        line = dumps(record.model_dump(exclude_unset=True) if isinstance(record, TrainingRecord) else record, None)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def sync(self) -> None:
        """Wait until every line appended so far is on the disk (fsync)."""
        if not self.enabled or not self.path.exists():
            return
        with open(self.path, "a", encoding="utf-8") as f:  # writable: Windows fsyncs only those
            os.fsync(f.fileno())

    def read(self) -> list[TrainingRecord]:
        """The records in order; ``[]`` if there is no log yet.

        A last line that does not parse is skipped: it is what a process killed mid-write leaves.
        A bad line anywhere else means the file is damaged and raises `UserError`.
        """
        if not self.path.exists():
            return []
        lines = self.path.read_bytes().decode("utf-8", errors="replace").splitlines()
        records: list[TrainingRecord] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                records.append(TrainingRecord.model_validate(json.loads(line)))  # a non-object fails validation
            except (json.JSONDecodeError, ValidationError) as e:
                if number == len(lines):
                    break  # truncated by a killed writer
                damaged = f"{self.path} line {number} is not a training record ({e}); the metrics log is damaged"
                raise UserError(damaged) from e
        return records

    def epochs(self) -> list[TrainingRecord]:
        """The per-epoch records, in order."""
        return [r for r in self.read() if r.is_epoch]

    def truncate_after(self, step: int) -> None:
        """Drop records logged after `step` (they are redone when a run resumes from a checkpoint)."""
        if self.enabled and self.path.exists():
            keep = [r for r in self.read() if (r.step or 0) <= step]
            atomic_write_text(self.path, "".join(dumps(r.model_dump(exclude_unset=True), None) + "\n" for r in keep))

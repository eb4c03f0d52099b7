"""The ``continual`` section of a continuation's report (``report.json``), declared once."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from modelworks.store.jsonfile import Stored


class HoldoutScores(Stored):
    """The task's main metric on the parent's frozen holdout (rows of every earlier window)."""

    rows: int
    parent: float | None = None
    child: float | None = None


class NewWindowScores(Stored):
    """The main metric on this run's own test split: the parent as it was, and after training."""

    parent: float | None = None
    child: float | None = None


class ReplayFacts(Stored):
    parent_rows: int = Field(0, description="rows in the parent's buffer")
    mixed_rows: int = Field(0, description="replayed rows added to the training data (the buffer, repeated as needed)")
    ratio: float = 0.0
    buffer_rows: int = Field(0, description="rows in this run's buffer, every class of the lineage balanced")
    balanced_finetune_epochs: int = Field(0, description="epochs of the closing pass on this run's buffer")


class Continuation(Stored):
    """A run trained from a parent (``train.init_from``): its lineage and what it learned and forgot.

    `forgetting` is the parent's main metric on the old holdout minus the child's, signed so that a
    positive number means the child does worse on old data (whichever way the metric improves).
    """

    parent: str = Field(description="the parent run's folder")
    lineage: list[str] = Field(default_factory=list, description="run folders from the first ancestor to the parent")
    metric: str
    new_window: NewWindowScores = Field(default_factory=NewWindowScores)
    old_holdout: HoldoutScores | None = Field(None, description="None: the parent kept no holdout (no train.replay)")
    forgetting: float | None = None
    unseen: dict[str, int] = Field(
        default_factory=dict,
        description="values the parent's preprocessing has never seen, mapped to unknown: rows of a categorical "
        "column, tokens of a text column, over every split of the new data",
    )
    replay: ReplayFacts | None = None
    penalty: dict[str, Any] | None = Field(None, description="train.parent_penalty as applied")

    def summary(self) -> str:
        """Plain lines for a command's output: the parent, new window and old holdout, parent -> child."""
        lines = [
            f"continued from {self.parent}: {self.metric} on the new window "
            f"{_fmt(self.new_window.parent)} -> {_fmt(self.new_window.child)}"
        ]
        if self.old_holdout is not None:
            lines.append(
                f"old holdout ({self.old_holdout.rows} rows): {self.metric} {_fmt(self.old_holdout.parent)} -> "
                f"{_fmt(self.old_holdout.child)}, forgetting {_fmt(self.forgetting)}"
            )
        if self.replay is not None:
            lines.append(
                f"replayed {self.replay.mixed_rows} rows from the parent's buffer of {self.replay.parent_rows}; "
                f"this run keeps {self.replay.buffer_rows}"
            )
        unseen = {name: n for name, n in self.unseen.items() if n}
        if unseen:
            lines.append("unseen before, read as unknown: " + ", ".join(f"{k} {n}" for k, n in unseen.items()))
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"

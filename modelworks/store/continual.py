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

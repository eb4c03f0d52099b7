"""The continual-learning sections of ``train``, torch-free so that the schema can import them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelworks.config.base import Section


class ReplayConfig(Section):
    """A class-balanced reservoir of the training rows every run keeps, and its share of a continuation's data."""

    size: int = Field(ge=1, description="rows the run keeps (class-balanced reservoir over every row of its lineage)")
    ratio: float = Field(
        0.5, ge=0.0, lt=1.0, description="share of the parent's buffer rows in a continuation's training data"
    )
    holdout: int = Field(
        500, ge=0, description="test rows of each window kept as a frozen holdout, carried forward by continuations"
    )
    holdout_max: int = Field(5000, ge=1, description="most holdout rows kept in all (windows share it evenly)")
    balanced_finetune_epochs: int = Field(
        0,
        ge=0,
        description="a continuation's closing pass: epochs on its own buffer (the parent's merged with the new "
        "rows, every class of the lineage equally), after the main epochs; undoes the bias toward the newest "
        "classes (the balanced fine-tuning of GDumb and EEIL). 0: none",
    )
    balanced_finetune_lr_factor: float = Field(
        0.1, gt=0.0, description="the closing pass trains at train.lr times this (a gentle correction)"
    )


class ParentPenaltyConfig(Section):
    """A penalty keeping a continuation's weights near its parent's: weight/2 * sum(F * (w - w_parent)^2).

    ``l2``: F = 1; ``ewc``: F = the parent's diagonal Fisher information, estimated on the parent's
    replay buffer when the continuation starts (the parent needs ``train.replay``).
    """

    kind: Literal["l2", "ewc"] = "l2"
    weight: float = Field(ge=0.0, description="lambda")
    fisher_rows: int = Field(256, ge=1, description="ewc: buffer rows the Fisher information is estimated on")

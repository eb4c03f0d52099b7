"""The promotion gate's settings (``gate.yaml``), torch- and numpy-free: the job kinds' schema
declares them. What each means: `modelworks.evaluate.gate`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class GateConfig(BaseModel):
    """The promotion gate's settings (``gate.yaml``); every key has a default."""

    model_config = ConfigDict(extra="forbid")

    delta: float = Field(0.0, ge=0.0, description="least improvement on the new window's holdout")
    epsilon: float = Field(0.02, ge=0.0, description="forgetting budget: most the old holdout may drop")
    alpha: float = Field(0.05, gt=0.0, lt=1.0, description="significance level of the one-sided paired test")
    beat_baselines: bool = Field(True, description="the candidate must beat every naive baseline on the new window")
    regression_metric: Literal["mae", "rmse"] = Field("mae", description="the error a regression is judged by")
    bootstrap: int = Field(2000, ge=100, le=100_000, description="paired-bootstrap resamples (regression)")
    seed: int = Field(0, description="seed of the bootstrap resampling")

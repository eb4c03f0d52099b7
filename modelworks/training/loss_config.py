"""The loss registry and the loss config (torch-free; the functions are in `training.losses`).

Each loss declares the tasks it serves and the tasks whose ``auto`` loss it is; `LossConfig.type`
offers exactly the registered names, plus ``auto``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from modelworks.config.base import Section
from modelworks.registry import Registry

LOSSES: Registry[Any] = Registry("loss")

LOSSES.declare(
    "cross_entropy", impl="modelworks.training.losses:cross_entropy", tasks=("multiclass",), default_for=("multiclass",)
)
LOSSES.declare("bce", impl="modelworks.training.losses:bce", tasks=("binary",), default_for=("binary",))
LOSSES.declare("mse", impl="modelworks.training.losses:mse", tasks=("regression",), default_for=("regression",))
LOSSES.declare("huber", impl="modelworks.training.losses:huber", tasks=("regression",), default_for=())


def default_loss(task: str) -> str:
    """The loss that ``auto`` picks for `task`."""
    return next(e.name for e in LOSSES if task in e.meta["default_for"])


def losses_for(task: str) -> list[str]:
    """The registered losses that serve `task`."""
    return [e.name for e in LOSSES if task in e.meta["tasks"]]


_AUTO = ", ".join(f"{default_loss(t)} ({t})" for t in ("multiclass", "binary", "regression"))
LossName = Literal[("auto", *LOSSES.names())]  # type: ignore[valid-type]


class LossConfig(Section):
    type: LossName = Field("auto", description=f"auto: {_AUTO}")  # type: ignore[valid-type]
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    class_weights: Literal["none", "balanced"] | list[float] = "none"
    huber_delta: float = Field(1.0, gt=0.0)

"""The precisions a torch model is served at, and the one check of a runtime and precision pair.

Torch-free: `modelworks serve`, `ServedModel.load`, the platform's deployments and the REST body
all check through `check_precision`.
"""

from __future__ import annotations

from typing import Literal, get_args

from modelworks.errors import UserError

Precision = Literal["fp32", "bf16"]  # bf16: the torch forward pass under bfloat16 autocast
PRECISIONS: tuple[str, ...] = get_args(Precision)


def check_precision(runtime: str, precision: str) -> None:
    """A UserError naming what is wrong unless `precision` is known and, past fp32, `runtime` is torch."""
    if precision not in PRECISIONS:
        raise UserError(f"precision must be {' or '.join(PRECISIONS)}; got {precision!r}")
    if precision != "fp32" and runtime != "torch":
        raise UserError(f"precision {precision} needs the torch runtime; got runtime {runtime}")

"""What the data layer hands to the models: the input schema and the batch layout.

A batch is a flat ``dict[str, Tensor]``:

==================  ===========================  ==========================================
key                 shape / dtype                holds
==================  ===========================  ==========================================
``numeric``         (batch, n_numeric) float32   every numeric feature, scaled, in schema order
``categorical``     (batch, n_categorical) int64 category index per feature (0 = unknown)
``text.<name>``     (batch, max_length) int64    token ids, right-padded with ``pad_id``
``image.<name>``    (batch, C, H, W) float32     scaled (and normalized) pixels
``target``          (batch,) int64 or float32    class index, or value for regression/binary
==================  ===========================  ==========================================

Keys for feature kinds that are absent are absent. The schema below is produced by the fitted
preprocessor, saved with the model as JSON, and is all a model needs to build itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Task = Literal["binary", "multiclass", "regression"]

NUMERIC = "numeric"
CATEGORICAL = "categorical"
TARGET = "target"


def input_key(kind: str, name: str) -> str:
    """The batch key of a feature with a tensor of its own (text, image): ``<kind>.<name>``."""
    return f"{kind}.{name}"


def text_key(name: str) -> str:
    return input_key("text", name)


def image_key(name: str) -> str:
    return input_key("image", name)


@dataclass
class TextSpec:
    vocab_size: int
    max_length: int
    pad_id: int


@dataclass
class InputSchema:
    """Shapes and sizes of every model input, plus the prediction target."""

    task: Task
    num_classes: int  # 2 for binary, K for multiclass, 1 for regression
    class_names: list[str] | None = None
    numeric: list[str] = field(default_factory=list)
    categorical: dict[str, int] = field(default_factory=dict)  # name -> cardinality incl. unknown
    text: dict[str, TextSpec] = field(default_factory=dict)
    image: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # name -> (C, H, W)

    @property
    def out_dim(self) -> int:
        """Width of the model's output: K logits for multiclass, one value otherwise."""
        return self.num_classes if self.task == "multiclass" else 1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> InputSchema:
        d = dict(d)
        d["text"] = {k: TextSpec(**v) for k, v in d.get("text", {}).items()}
        d["image"] = {k: tuple(v) for k, v in d.get("image", {}).items()}
        return cls(**d)

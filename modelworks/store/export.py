"""export.json and inputs.json: how an export was made and checked, and its tensor interface.

`modelworks.exporting` writes both with `write_export`; everything else reads them with
`read_export` / `read_inputs`. A format's own facts (the ONNX opset, TorchScript's loader) are
optional fields, written only when the format set them. Strict JSON: a difference that could not
be measured is null, never NaN or Infinity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelworks.errors import UserError
from modelworks.store.atomic import atomic_write_text
from modelworks.store.files import EXPORT_JSON, INPUTS_JSON


class Record(BaseModel):
    """A typed artifact record: unknown keys are errors, NaN and infinity are written as null."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="null", populate_by_name=True)

    def to_json(self) -> str:
        """The record as written: the fields that were set (a format's own ones only where it set them)."""
        return self.model_dump_json(indent=2, exclude_unset=True, by_alias=True) + "\n"


class ExportCheck(Record):
    """The exported model's outputs against PyTorch's on the check split."""

    split: str
    rows: int
    batch_size: int
    example_batch_size: int  # rows of the example the model was traced with
    max_abs_diff: float | None  # None: outputs of another shape
    tolerance: float
    passed: bool
    trimmed_max_abs_diff: float | None = None  # text models: with each batch's padding trimmed
    free_sequence: bool | None = None  # text models: whether texts may be shorter than max_length


class TracerWarning(Record):
    layer: str | None
    category: str
    message: str
    where: str  # file:line
    count: int


class Int8Copy(Record):
    """ONNX ``quantize: int8``: the dynamically quantized copy and its effect on the main metric."""

    file: str
    method: str
    operators: list[str]
    size_bytes: int
    float_size_bytes: int
    size_ratio: float
    split: str
    rows: int
    metric: str
    float_value: float | None = Field(alias="float")  # the float model's metric on the split
    quantized: float | None
    change: float | None
    max_abs_diff: float
    agreement: float | None = None  # classification: share of rows predicted as the same class


class FormatRecord(Record):
    """What a format writes about its model file; export_run adds the rest."""

    file: str
    size_bytes: int
    exporter: str
    check: ExportCheck
    warnings: list[TracerWarning] = Field(default_factory=list)
    # onnx
    opset: int | None = None
    dynamic_axes: dict[str, dict[str, str]] | None = None
    runtime: str | None = None
    quantized: Int8Copy | None = None
    # torchscript
    load: str | None = None


class ExportRecord(FormatRecord):
    """export.json."""

    format: str
    run: str  # the exported run's folder
    model: str  # its model type
    task: str
    created: str  # ISO 8601, UTC
    versions: dict[str, str | None]  # None: not installed
    inputs: list[str]  # the positional input names, in order
    outputs: list[str]


class ExportedInput(BaseModel):
    """One positional input of inputs.json. Its other keys depend on the kind of input (columns,
    tokenizer, image size, ...) and are documented in `modelworks.exporting.interface`."""

    model_config = ConfigDict(extra="allow")

    name: str
    dtype: str
    shape: list[int | str]
    build: str


class ExportedOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    dtype: str
    shape: list[int | str]
    task: str
    read: str
    class_names: list[str] | None
    threshold: float | None = None


class InputsDescription(BaseModel):
    """inputs.json: the exported model's tensor interface and how to build each tensor from raw data."""

    model_config = ConfigDict(extra="forbid")

    inputs: list[ExportedInput]
    output: ExportedOutput
    preprocess: str


def write_export(folder: Path, record: ExportRecord, inputs: InputsDescription) -> None:
    atomic_write_text(Path(folder) / INPUTS_JSON, inputs.model_dump_json(indent=2, exclude_unset=True) + "\n")
    atomic_write_text(Path(folder) / EXPORT_JSON, record.to_json())


def read_export(folder: Path) -> ExportRecord:
    return _read(Path(folder) / EXPORT_JSON, ExportRecord)


def read_inputs(folder: Path) -> InputsDescription:
    return _read(Path(folder) / INPUTS_JSON, InputsDescription)


def is_export(folder: Path) -> bool:
    """Whether `folder` holds an export (and may be replaced by a new one)."""
    return (Path(folder) / EXPORT_JSON).is_file()


def _read(path: Path, model: Any) -> Any:
    try:
        return model.model_validate_json(path.read_bytes())
    except FileNotFoundError as e:
        raise UserError(f"{path.parent} has no {path.name}: it is not a modelworks export") from e
    except ValidationError as e:
        raise UserError(f"{path} is not a valid {path.name}: {e.errors()[0]['msg']}") from e

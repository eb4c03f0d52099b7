"""The export folder: export.json and inputs.json typed, and `StoredExport`, the folder's typed view.

An export folder is self-describing: beside the model file it holds the run's resolved
``config.yaml`` and ``preprocess.json`` (fitted preprocessing, label encoding and tokenizers), so
that it serves on its own, its run folder gone. ``export.json`` records how it was made and
checked, the library versions, and the SHA-256 of every other file in the folder (``files``);
`StoredExport.verified` checks a file against it before it is read.

`modelworks.exporting` writes the records with `write_export`; everything else reads them with
`read_export` / `read_inputs` or `StoredExport`. A format's own facts (the ONNX opset,
TorchScript's loader) are optional fields, written only when the format set them. Strict JSON: a
difference that could not be measured is null, never NaN or Infinity.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelworks.config.load import read_yaml, validate
from modelworks.config.schema import ExperimentConfig
from modelworks.errors import UserError
from modelworks.store.atomic import atomic_write_text
from modelworks.store.digest import file_sha256
from modelworks.store.files import CONFIG, EXPORT_JSON, INPUTS_JSON, ONNX_INT8_MODEL, PREPROCESS
from modelworks.store.preprocess import PreprocessRecord, read_preprocess


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
    # SHA-256 of every file in the folder but export.json, by its path inside the folder (``/``
    # separated); None in exports made before exports carried them
    files: dict[str, str] | None = None


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


def write_export(folder: Path, record: ExportRecord, inputs: InputsDescription) -> ExportRecord:
    """inputs.json, then export.json with the SHA-256 of every file in `folder` (written last);
    returns the record as written."""
    folder = Path(folder)
    atomic_write_text(folder / INPUTS_JSON, inputs.model_dump_json(indent=2, exclude_unset=True) + "\n")
    hashes = {
        path.relative_to(folder).as_posix(): file_sha256(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.relative_to(folder).as_posix() != EXPORT_JSON
    }
    record = record.model_copy(update={"files": hashes})
    record.model_fields_set.add("files")
    atomic_write_text(folder / EXPORT_JSON, record.to_json())
    return record


def read_export(folder: Path) -> ExportRecord:
    return _read(Path(folder) / EXPORT_JSON, ExportRecord)


def read_inputs(folder: Path) -> InputsDescription:
    return _read(Path(folder) / INPUTS_JSON, InputsDescription)


class StoredExport:
    """An export folder read through its typed artifacts, each file checked against the SHA-256
    that export.json records for it before it is read. The same `config` and `preprocess` as a
    `modelworks.store.run.StoredRun`, so that whatever serves a run serves its export alike."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @cached_property
    def record(self) -> ExportRecord:
        return read_export(self.path)

    @cached_property
    def inputs(self) -> InputsDescription:
        return _read(self.verified(INPUTS_JSON), InputsDescription)

    @cached_property
    def config(self) -> ExperimentConfig:
        """The resolved experiment the exported run was trained with (its ``config.yaml``)."""
        path = self.verified(CONFIG)
        return validate(read_yaml(path), str(path))

    @cached_property
    def preprocess(self) -> PreprocessRecord:
        """The run's fitted preprocessing state and input schema: scalers, vocabularies, label
        encoding, tokenizers."""
        return read_preprocess(self.verified(PREPROCESS).parent)

    @property
    def self_describing(self) -> bool:
        """Whether the folder carries the run's config (exports made before it did need their run)."""
        return (self.path / CONFIG).is_file() or CONFIG in (self.record.files or {})

    def model_file(self, int8: bool = False) -> Path:
        """The model file (``int8``: the ONNX export's int8 copy), checked."""
        if not int8:
            return self.verified(self.record.file)
        if self.record.quantized is None:
            raise UserError(
                f"{self.path} has no {ONNX_INT8_MODEL}: it was exported without --quantize int8 "
                f"(export the run again with it, or serve without --int8)"
            )
        return self.verified(self.record.quantized.file)

    def verified(self, name: str) -> Path:
        """The path of file `name` in the folder, after checking it is there and, when export.json
        records hashes, that its SHA-256 is the one recorded. Either failure is a UserError naming
        the file."""
        path = self.path / name
        recorded = (self.record.files or {}).get(name)
        if not path.is_file():
            made = "" if name != CONFIG or self.record.files is not None else (
                " (this export was made before exports carried their run's config; export the run again)"
            )  # fmt: skip
            raise UserError(f"{self.path} has no {name}: the export is incomplete{made}")
        if self.record.files is not None:
            if recorded is None:
                raise UserError(f"{path} is not one of the files {EXPORT_JSON} records: it was added after export")
            if file_sha256(path) != recorded:
                raise UserError(
                    f"{path} has changed since export: its SHA-256 is not the one {EXPORT_JSON} records; "
                    f"restore it or export the run again"
                )
        return path

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"


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

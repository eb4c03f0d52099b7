"""The contract every export format keeps, run for each entry of the registry.

A format exports a tiny run with its default options; the check against PyTorch passes; export.json
and inputs.json are strict JSON that parse with their typed models (`modelworks.store.export`) and
agree with the returned record; the folder carries the run's config and preprocessing and the
SHA-256 of every file (it serves without its run); the options round-trip; an unknown or bad option is a UserError
naming the key and the format. A new format is picked up here by its declaration alone.
"""

from __future__ import annotations

import json

import pytest

import modelworks
from modelworks.config.base import Section
from modelworks.errors import UserError
from modelworks.exporting import FORMATS, parse_options
from modelworks.exporting.export import export_run
from modelworks.store.digest import file_sha256
from modelworks.store.export import ExportRecord, InputsDescription, read_export, read_inputs
from modelworks.store.files import CONFIG, EXPORT_JSON, INPUTS_JSON, PREPROCESS

FORMAT_NAMES = FORMATS.names()


def _strict(path):
    def refuse(name: str):
        raise ValueError(f"{path.name} holds {name}: not strict JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_every_format_is_declared() -> None:
    assert FORMAT_NAMES == ["onnx", "torchscript", "triton"]
    for entry in FORMATS:
        assert issubclass(entry.config_cls, Section) and callable(entry.impl), entry.impl_path


@pytest.mark.parametrize("format_", FORMAT_NAMES)
def test_exports_checks_and_records(trained, tmp_path, format_: str) -> None:
    run = trained["mlp-iris"]
    result = export_run(run, format_, output=tmp_path / format_)
    record = result.record
    assert record.format == format_ and record.check.passed and record.check.rows == len(run.splits()["test"])
    assert result.file == result.folder / record.file and result.file.is_file()
    assert record.size_bytes == result.file.stat().st_size
    assert read_export(result.folder) == ExportRecord.model_validate(_strict(result.folder / EXPORT_JSON)) == record
    inputs = read_inputs(result.folder)
    assert inputs == InputsDescription.model_validate(_strict(result.folder / INPUTS_JSON))
    assert [spec.name for spec in inputs.inputs] == record.inputs and [inputs.output.name] == record.outputs
    # self-describing: the run's config and preprocessing, byte for byte, and every file's SHA-256
    for name in (CONFIG, PREPROCESS):
        assert (result.folder / name).read_bytes() == (run.path / name).read_bytes()
    on_disk = {p.relative_to(result.folder).as_posix() for p in result.folder.rglob("*") if p.is_file()}
    assert set(record.files) == on_disk - {EXPORT_JSON}
    assert all(file_sha256(result.folder / name) == sha for name, sha in record.files.items())


@pytest.mark.parametrize("format_", FORMAT_NAMES)
def test_options_round_trip(format_: str) -> None:
    options = parse_options(format_, {})
    assert options.type == format_ and isinstance(options, FORMATS.get(format_).config_cls)
    assert parse_options(format_, options.model_dump(exclude={"type"})) == options
    assert parse_options(format_, options) is options


@pytest.mark.parametrize("format_", FORMAT_NAMES)
def test_an_unknown_option_names_the_key_and_the_format(trained, format_: str) -> None:
    with pytest.raises(UserError, match=rf"the no_such_option option does not apply to {format_} export"):
        parse_options(format_, {"no_such_option": 1})
    with pytest.raises(UserError, match=rf"the no_such_option option does not apply to {format_} export"):
        modelworks.export(trained["mlp-iris"].path, format_, no_such_option=1)

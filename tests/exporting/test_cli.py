"""`modelworks export` end to end, in-process; bad options are one clear message with status 2;
the export folder is replaced whole, and only an export folder is ever replaced."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from modelworks.cli import app
from modelworks.errors import UserError
from modelworks.exporting.export import export_run
from modelworks.store.files import EXPORT_JSON

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_export_onnx_with_int8_from_the_command_line(trained, tmp_path) -> None:
    run = trained["mlp-iris"]
    out = tmp_path / "iris-onnx"
    result = invoke(
        "export", str(run.path), "--format", "onnx", "--quantize", "int8", "--opset", "17", "--output", str(out)
    )
    assert result.exit_code == 0, result.output
    assert "check on the test split" in result.stdout and "passed" in result.stdout and "int8 model" in result.stdout
    assert "inputs, in order: numeric" in result.stdout
    record = json.loads((out / EXPORT_JSON).read_text())
    assert record["opset"] == 17 and record["check"]["passed"] and record["quantized"]["file"] == "model.int8.onnx"
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "config.yaml",
        "export.json",
        "inputs.json",
        "model.int8.onnx",
        "model.onnx",
        "preprocess.json",
    ]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--format", "tflite"], "unknown export format 'tflite' at --format; choose one of: onnx, torchscript"),
        (["--format", "torchscript", "--quantize", "int8"], "the quantize option does not apply to torchscript export"),
        (["--format", "onnx", "--quantize", "int4"], "the quantize option of onnx export is invalid"),
        (["--format", "onnx", "--opset", "16"], "the opset option of onnx export is invalid"),
    ],
)
def test_bad_options_are_one_clear_error(trained, args: list[str], message: str) -> None:
    result = invoke("export", str(trained["mlp-iris"].path), *args)
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split()) and "Traceback" not in result.output


def test_a_missing_run_is_one_clear_error(tmp_path) -> None:
    result = invoke("export", str(tmp_path / "nope"), "--format", "onnx")
    assert result.exit_code == 2 and "no run at" in result.stderr


def test_a_new_export_replaces_the_folder_whole(trained, tmp_path) -> None:
    run = trained["mlp-iris"]
    out = tmp_path / "export"
    export_run(run, "onnx", {"quantize": "int8"}, output=out)
    assert (out / "model.int8.onnx").exists()
    export_run(run, "onnx", output=out)  # without int8 this time: the old int8 file must not linger
    assert not (out / "model.int8.onnx").exists() and (out / "model.onnx").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no staging or previous folder left


def test_only_an_export_folder_is_replaced(trained, tmp_path) -> None:
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "todo.txt").write_text("keep me")
    with pytest.raises(UserError, match="exists and is not a modelworks export"):
        export_run(trained["mlp-iris"], "torchscript", output=precious)
    assert (precious / "todo.txt").read_text() == "keep me"


def test_the_python_facade(trained, tmp_path) -> None:
    import modelworks
    import modelworks.exporting  # noqa: F401 - the package never hides the facade function
    from modelworks import api

    run = trained["mlp-iris"]
    by_api = api.export(run.path, "torchscript", output=tmp_path / "api")
    by_package = modelworks.export(run, format="torchscript", output=tmp_path / "package")
    assert by_api.record.check.passed and by_package.record.check.passed
    assert by_api.file.name == by_package.file.name == "model.pt"

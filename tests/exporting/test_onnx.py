"""ONNX export of every architecture: onnxruntime matches PyTorch within 1e-4, at batch sizes and
sequence lengths other than the traced ones; the int8 copy is smaller and its metric change is
recorded; the shipped preprocessing and interface let a client rebuild the inputs by hand."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from tokenizers import Tokenizer

from modelworks.data.schema import text_key
from modelworks.exporting.check import EXAMPLE_BATCH
from modelworks.exporting.export import export_run
from modelworks.exporting.interface import input_names
from modelworks.models import MODELS
from modelworks.store import run as store
from modelworks.store.files import EXPORT_JSON

from .conftest import RECIPES, RUN_IDS, TEXT_RUN_IDS, text_frame


def test_every_model_is_covered() -> None:
    missing = [name for name in MODELS.names() if not RECIPES.get(name)]
    assert not missing, f"add a run of {missing} to RECIPES in tests/export/conftest.py"


def torch_outputs(run, batch: dict[str, torch.Tensor]) -> np.ndarray:
    with torch.inference_mode():
        return run.model({k: v for k, v in batch.items() if k != "target"}).numpy()


@pytest.mark.parametrize("model_type,run_id", RUN_IDS)
def test_onnx_matches_pytorch_at_any_batch_size(trained, onnx_exports, model_type: str, run_id: str) -> None:
    run = trained[run_id]
    result = onnx_exports[run_id]
    check = result.record.check
    assert check.passed and check.max_abs_diff <= 1e-4 and check.rows == len(run.splits()["test"])
    assert result.file == run.path / "export" / "onnx" / "model.onnx"
    assert json.loads((result.folder / EXPORT_JSON).read_text())["check"] == check.model_dump(exclude_unset=True)

    session = ort.InferenceSession(str(result.file), providers=["CPUExecutionProvider"])
    names = input_names(run.schema)
    assert [i.name for i in session.get_inputs()] == names == result.record.inputs
    test = run.splits()["test"].tensors
    for rows in (1, 3, len(test["target"])):  # the trace used EXAMPLE_BATCH rows
        assert rows != EXAMPLE_BATCH
        batch = {k: v[:rows] for k, v in test.items()}
        got = session.run(None, {name: batch[name].numpy() for name in names})[0]
        np.testing.assert_allclose(got, torch_outputs(run, batch), atol=1e-4, rtol=0)


@pytest.mark.parametrize("run_id", TEXT_RUN_IDS)
def test_text_sequence_axis_is_free(trained, onnx_exports, run_id: str) -> None:
    """Padding trimmed to the longest text of the test split gives PyTorch's full-length outputs."""
    run = trained[run_id]
    result = onnx_exports[run_id]
    name, spec = next(iter(run.schema.text.items()))
    key = text_key(name)
    assert result.record.check.free_sequence is True
    assert result.record.dynamic_axes[key] == {"0": "batch", "1": "seq"}
    test = run.splits()["test"].tensors
    longest = int((test[key] != spec.pad_id).sum(1).max())
    assert longest < test[key].shape[1], "the test texts should leave some padding to trim"
    feed = {name: test[name].numpy() for name in input_names(run.schema)}
    feed[key] = feed[key][:, :longest]
    session = ort.InferenceSession(str(result.file), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, feed)[0], torch_outputs(run, test), atol=1e-4, rtol=0)


def test_int8_is_smaller_and_its_metric_change_recorded(trained, onnx_exports) -> None:
    run = trained["pretrained-lora"]
    result = onnx_exports["pretrained-lora"]
    q = result.record.quantized
    int8 = result.folder / "model.int8.onnx"
    assert int8.stat().st_size == q.size_bytes < result.file.stat().st_size / 3  # MiniLM: 90 MB -> about 23 MB
    assert q.metric == "accuracy" and q.rows == len(run.splits()["test"])
    assert q.change == pytest.approx(q.quantized - q.float_value)
    assert q.float_value == pytest.approx(run.evaluate(split="test")["accuracy"])
    assert 0.0 <= q.agreement <= 1.0 and q.max_abs_diff > 0  # really a different model
    session = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == result.record.inputs


@pytest.mark.parametrize("run_id,metric,width", [("mlp-binary", "accuracy", 1), ("mlp-regression", "rmse", 1)])
def test_binary_and_regression_outputs_and_int8_records(
    trained, onnx_exports, run_id: str, metric: str, width: int
) -> None:
    run = trained[run_id]
    result = onnx_exports[run_id]
    assert result.record.quantized.metric == metric and result.record.task == run.schema.task
    stored = json.loads((result.folder / EXPORT_JSON).read_text())["quantized"]
    assert ("agreement" in stored) == (run.schema.task == "binary")
    description = json.loads((result.folder / "inputs.json").read_text())
    assert description["output"]["shape"] == ["batch", width]
    assert ("threshold" in description["output"]) == (run.schema.task == "binary")


def test_preprocess_json_is_the_runs_and_inputs_can_be_rebuilt_from_the_shipped_files(trained, onnx_exports) -> None:
    """What a client without modelworks does: numbers from inputs.json, the tokenizer from
    preprocess.json, and numpy; the result equals the preprocessor's tensors."""
    run = trained["rnn-lstm-bi"]
    folder = onnx_exports["rnn-lstm-bi"].folder
    assert (folder / store.PREPROCESS).read_bytes() == (run.path / store.PREPROCESS).read_bytes()
    shipped = json.loads((folder / store.PREPROCESS).read_text())
    assert shipped["state"] == run.preprocessor.state_dict()

    description = json.loads((folder / "inputs.json").read_text())
    specs = {spec["name"]: spec for spec in description["inputs"]}
    assert list(specs) == ["numeric", "categorical", "text.text"]
    frame = text_frame().iloc[:20]
    expected = run.preprocessor.transform(frame, with_target=False)

    numeric = np.stack(
        [
            (frame[c["column"]].fillna(c["fill"]).to_numpy(float) - c["center"]) / c["scale"]
            for c in specs["numeric"]["columns"]
        ],
        axis=1,
    ).astype(np.float32)
    np.testing.assert_allclose(numeric, expected["numeric"].numpy(), rtol=1e-6)

    codes = []
    for c in specs["categorical"]["columns"]:
        vocabulary = shipped["state"]["features"][c["column"]]["vocabulary"]
        values = frame[c["column"]].astype(object).where(frame[c["column"]].notna(), c["fill"])
        codes.append([vocabulary.index(v) + 1 if v in vocabulary else 0 for v in values])
    np.testing.assert_array_equal(np.array(codes).T, expected["categorical"].numpy())

    spec = specs["text.text"]
    tokenizer = Tokenizer.from_str(shipped["state"]["features"]["text"]["tokenizer"])
    ids = [e.ids for e in tokenizer.encode_batch(frame["text"].fillna(spec["fill"]).astype(str).tolist())]
    np.testing.assert_array_equal(np.array(ids), expected["text.text"].numpy())
    assert np.array(ids).shape[1] == spec["max_length"]

    out = description["output"]
    assert out["shape"] == ["batch", 3] and out["class_names"] == run.schema.class_names
    readme = (folder / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in specs)


def test_image_inputs_can_be_rebuilt_from_the_shipped_statistics(trained, onnx_exports) -> None:
    run = trained["cnn-digits"]
    folder = onnx_exports["cnn-digits"].folder
    spec = json.loads((folder / "inputs.json").read_text())["inputs"][0]
    assert spec["name"] == "image.image" and spec["shape"] == ["batch", 1, 8, 8] and spec["mode"] == "L"
    from modelworks.data.builtins import digits

    frame = digits().frame.iloc[:5]
    pixels = np.stack(frame["image"].tolist()).astype(np.float32)[:, None] / 255  # (5, 1, 8, 8)
    rebuilt = (pixels - np.array(spec["mean"])[None, :, None, None]) / np.array(spec["std"])[None, :, None, None]
    np.testing.assert_allclose(rebuilt, run.preprocessor.transform(frame)["image.image"].numpy(), atol=1e-6)


def test_opset_is_recorded_and_bounded(trained, tmp_path) -> None:
    run = trained["mlp-iris"]
    result = export_run(run, "onnx", {"opset": 20}, output=tmp_path / "opset20")
    assert result.folder == tmp_path / "opset20"
    import onnx

    model = onnx.load(str(result.file))
    assert result.record.opset == 20 and {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {20}
    from modelworks.errors import UserError

    with pytest.raises(UserError, match=r"the opset option of onnx export is invalid .*got 25"):
        export_run(run, "onnx", {"opset": 25})
    with pytest.raises(UserError, match=r"the quantize option does not apply to torchscript export"):
        export_run(run, "torchscript", {"quantize": "int8"})
    with pytest.raises(UserError, match=r"unknown export format 'tflite'.*onnx, torchscript"):
        export_run(run, "tflite")

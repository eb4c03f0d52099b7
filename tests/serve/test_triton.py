"""`modelworks export --format triton`: a model repository whose config.pbtxt Triton's own schema reads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from modelworks.errors import UserError
from modelworks.exporting.export import export_run
from modelworks.serve.model import ServedModel
from modelworks.store.export import read_export, read_inputs

TYPES = {"float32": model_config_pb2.TYPE_FP32, "int64": model_config_pb2.TYPE_INT64}


@pytest.mark.parametrize("key", ["iris", "text", "digits"])
def test_config_pbtxt_parses_and_matches_the_export(runs, tmp_path, key):
    run = runs[key]
    result = export_run(run, "triton", {"max_batch": 16, "max_delay_ms": 2}, output=tmp_path / "repo")
    name = key
    config = text_format.Parse((tmp_path / "repo" / name / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert result.file == tmp_path / "repo" / name / "1" / "model.onnx" and result.file.is_file()
    assert config.name == name and config.platform == "onnxruntime_onnx" and config.max_batch_size == 16
    assert config.dynamic_batching.max_queue_delay_microseconds == 2000
    interface = read_inputs(tmp_path / "repo")
    assert (
        [i.name for i in config.input] == [spec.name for spec in interface.inputs] == read_export(result.folder).inputs
    )
    session = ort.InferenceSession(str(result.file), providers=["CPUExecutionProvider"])
    graph_inputs = {i.name: i for i in session.get_inputs()}
    for tensor, spec in zip(config.input, interface.inputs, strict=True):
        assert tensor.data_type == TYPES[spec.dtype]
        assert list(tensor.dims) == [d if isinstance(d, int) else -1 for d in spec.shape[1:]]
        assert [d if isinstance(d, int) else -1 for d in graph_inputs[tensor.name].shape[1:]] == list(tensor.dims)
    (output,) = config.output
    assert output.name == interface.output.name and output.data_type == model_config_pb2.TYPE_FP32
    assert list(output.dims) == [interface.output.shape[1]]
    # the repository's model answers like the run
    data = run.splits()["test"].tensors
    feeds = {t.name: data[t.name][:4].numpy() for t in config.input}
    import torch

    with torch.inference_mode():
        expected = run.model({k: torch.from_numpy(v) for k, v in feeds.items()}).numpy()
    np.testing.assert_allclose(session.run(["outputs"], feeds)[0], expected, atol=1e-4)
    if key == "digits":
        return  # image records are base64 files: test_predict covers them
    # the repository serves on its own, like an ONNX export folder: /predict's numbers are the run's
    served = ServedModel.load(tmp_path / "repo", runtime="onnx", threads=1)
    frame = run.frames()["test"].iloc[:8].drop(columns=[run.config.data.target])
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    answer = served.decode(served.infer(served.encode(records)), len(records))
    expected = run.predict(frame, proba=True)
    assert [a["prediction"] for a in answer] == expected["prediction"].tolist()
    for a, (_, row) in zip(answer, expected.iterrows(), strict=True):
        assert a["probabilities"] == pytest.approx({c: row[f"proba_{c}"] for c in a["probabilities"]}, abs=1e-5)


def test_triton_options_are_checked(runs, tmp_path):
    with pytest.raises(UserError, match="quantize option does not apply to triton"):
        export_run(runs["iris"], "triton", {"quantize": "int8"}, output=tmp_path / "x")


def test_export_triton_from_the_command_line(runs, tmp_path):
    out = tmp_path / "repo"
    result = subprocess.run([sys.executable, "-m", "modelworks", "export", str(runs["iris"].path), "--format", "triton",
                             "--output", str(out)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert (out / "iris" / "config.pbtxt").is_file() and (out / "iris" / "1" / "model.onnx").is_file()

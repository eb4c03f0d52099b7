"""/predict gives the numbers of `modelworks predict` (Run.predict) on the same rows; ONNX answers like torch;
weights are only ever read from safetensors."""

from __future__ import annotations

import base64
import io
import pickle

import httpx
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from modelworks.data.builtins import BUILTINS
from modelworks.errors import UserError
from modelworks.serve.model import ServedModel

from .conftest import text_frame


def records_of(frame: pd.DataFrame, fields: list[str]) -> list[dict]:
    return [{f: (None if pd.isna(v) else v) for f, v in row.items() if f in fields} for row in frame.to_dict("records")]


def assert_same(answer: httpx.Response, expected: pd.DataFrame) -> None:
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert [p["prediction"] for p in predictions] == expected["prediction"].tolist()
    for p, (_, row) in zip(predictions, expected.iterrows(), strict=True):
        for cls, prob in p["probabilities"].items():
            assert prob == pytest.approx(row[f"proba_{cls}"], abs=1e-5)


@pytest.mark.parametrize("name", ["iris", "cancer"])
def test_tabular_predict_equals_run_predict(served, runs, name):
    run = runs[name]
    loaded = BUILTINS.get(run.config.data.source.removeprefix("builtin:")).impl()
    frame = loaded.frame.sample(20, random_state=1)
    fields = [f.name for f in run.config.data.features]
    records = records_of(frame, fields)
    answer = httpx.post(f"{served.url}/v2/models/{name}/predict", json={"instances": records})
    assert_same(answer, run.predict(frame.drop(columns=[loaded.target]), proba=True))


def test_text_predict_equals_run_predict(served, runs):
    run = runs["text"]
    frame = text_frame(30).drop(columns=["label"])
    frame.loc[3, "text"] = None  # a missing text becomes the fitted fill, as in predict
    answer = httpx.post(
        f"{served.url}/v2/models/text/predict", json={"instances": records_of(frame, ["text", "source"])}
    )
    assert_same(answer, run.predict(frame, proba=True))


def test_image_predict_equals_run_predict(served, runs):
    run = runs["digits"]
    frame = BUILTINS.get("digits").impl().frame.iloc[:12]
    encoded = []
    for image in frame["image"]:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        encoded.append({"image": base64.b64encode(buffer.getvalue()).decode()})
    answer = httpx.post(f"{served.url}/v2/models/digits/predict", json={"instances": encoded})
    assert_same(answer, run.predict(frame.drop(columns=["label"]), proba=True))


@pytest.mark.parametrize(
    ("instances", "message"),
    [
        ([{"sepal length (cm)": 1.0}], "instances[0].sepal width (cm): missing"),
        ([{"sepal length (cm)": "x", "sepal width (cm)": 1, "petal length (cm)": 1, "petal width (cm)": 1}],
         "instances[0].sepal length (cm): must be a number"),
        ([{"colour": 1}], "instances[0].colour: not a field"),
        ([], "at least one record"),
        (["a row"], "instances[0] must be an object"),
    ],
)  # fmt: skip
def test_bad_records_are_400_naming_the_field(served, instances, message):
    answer = httpx.post(f"{served.url}/v2/models/iris/predict", json={"instances": instances})
    assert answer.status_code == 400 and message in answer.json()["error"], answer.text


def test_bad_image_is_400(served):
    answer = httpx.post(f"{served.url}/v2/models/digits/predict", json={"instances": [{"image": "bm90IGFuIGltYWdl"}]})
    assert answer.status_code == 400 and "instances[0].image: not a readable image" in answer.json()["error"]


@pytest.mark.parametrize("name", ["iris", "text", "digits"])
def test_onnx_runtime_answers_like_torch(runs, name):
    run = runs[name]
    torch_model = ServedModel.load(run.path, threads=1)
    onnx_model = ServedModel.load(run.path, runtime="onnx", threads=1)
    int8_model = ServedModel.load(run.path / "export" / "onnx", runtime="onnx", threads=1, int8=True)
    data = run.splits()["test"].tensors
    inputs = {t.name: data[t.name][:16].numpy() for t in torch_model.inputs}
    expected = torch_model.infer(inputs)["outputs"]
    np.testing.assert_allclose(onnx_model.infer(inputs)["outputs"], expected, atol=1e-4)
    assert int8_model.infer(inputs)["outputs"].shape == expected.shape
    assert onnx_model.metadata()["inputs"] == torch_model.metadata()["inputs"]
    assert onnx_model.metadata()["platform"] == "onnxruntime_onnx"


@pytest.mark.parametrize("name", ["text", "digits"])
def test_bf16_precision_answers_like_fp32_at_bf16_rounding(runs, name):
    run = runs[name]
    fp32 = ServedModel.load(run.path, threads=1)
    bf16 = ServedModel.load(run.path, threads=1, precision="bf16")
    data = run.splits()["test"].tensors
    inputs = {t.name: data[t.name][:64].numpy() for t in fp32.inputs}
    expected, got = fp32.infer(inputs)["outputs"], bf16.infer(inputs)["outputs"]
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert not np.array_equal(got, expected)  # autocast did run in bf16
    np.testing.assert_allclose(got, expected, atol=0.05 * max(1.0, float(np.abs(expected).max())))
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.95
    with pytest.raises(UserError, match="needs the torch runtime"):
        ServedModel.load(run.path, runtime="onnx", precision="bf16")
    with pytest.raises(UserError, match="precision must be fp32 or bf16"):
        ServedModel.load(run.path, precision="fp16")


class Boom:
    """Unpickling this creates a file: proof that a pickle was (or was not) loaded."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_smuggled_as_weights_is_refused_unread(runs, tmp_path):
    import shutil

    copy = tmp_path / "smuggled"
    shutil.copytree(runs["iris"].path, copy, ignore=shutil.ignore_patterns("export"))
    marker = tmp_path / "unpickled"
    (copy / "model.safetensors").write_bytes(pickle.dumps(Boom(str(marker))))
    with pytest.raises(UserError, match="not a safetensors file.*never unpickled"):
        ServedModel.load(copy)
    assert not marker.exists()
    # nothing else in the folder is read as weights either: a checkpoint.pt pickle beside real weights is ignored
    shutil.copyfile(runs["iris"].path / "model.safetensors", copy / "model.safetensors")
    (copy / "model.pt").write_bytes(pickle.dumps(Boom(str(marker))))
    ServedModel.load(copy)
    assert not marker.exists()

"""Every Open Inference Protocol route, through tritonclient.http (JSON and binary) and raw HTTP."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from modelworks.exporting.interface import OUTPUT


def iris_rows(runs, n: int = 5) -> np.ndarray:
    run = runs["iris"]
    return run.splits()["test"].tensors["numeric"][:n].numpy()


def reference(runs, rows: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return runs["iris"].model({"numeric": torch.from_numpy(rows)}).numpy()


def test_server_and_model_routes_through_tritonclient(served):
    client = triton.InferenceServerClient(served.host)
    assert client.is_server_live() and client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta["name"] == "modelworks" and "binary_tensor_data" in meta["extensions"]
    assert client.is_model_ready("iris") and client.is_model_ready("iris", "1")
    assert not client.is_model_ready("nope")
    model = client.get_model_metadata("iris")
    assert model["name"] == "iris" and model["versions"] == ["1"]
    assert model["inputs"] == [{"name": "numeric", "datatype": "FP32", "shape": [-1, 4]}]
    assert model["outputs"] == [{"name": OUTPUT, "datatype": "FP32", "shape": [-1, 3]}]
    assert client.get_model_metadata("iris", "1") == model
    text = client.get_model_metadata("text")
    assert [(t["name"], t["datatype"], t["shape"]) for t in text["inputs"]] == [
        ("categorical", "INT64", [-1, 1]),
        ("text.text", "INT64", [-1, -1]),
    ]
    stats = client.get_inference_statistics("iris")["model_stats"][0]
    assert {"inference_count", "execution_count", "name", "version"} <= set(stats)


def test_model_config_is_tritons_model_config(served):
    from google.protobuf import json_format
    from tritonclient.grpc import model_config_pb2

    client = triton.InferenceServerClient(served.host)
    for name, platform in (("iris", "pytorch_libtorch"), ("iris-onnx", "onnxruntime_onnx"), ("text", None)):
        config = client.get_model_config(name)
        assert config == client.get_model_config(name, "1")
        parsed = json_format.ParseDict(config, model_config_pb2.ModelConfig())  # Triton's own schema
        meta = client.get_model_metadata(name)
        assert parsed.name == name and parsed.max_batch_size == 32
        assert parsed.dynamic_batching.max_queue_delay_microseconds == 5000
        for tensors, described in ((parsed.input, meta["inputs"]), (parsed.output, meta["outputs"])):
            assert [(t.name, model_config_pb2.DataType.Name(t.data_type), list(t.dims)) for t in tensors] == [
                (t["name"], "TYPE_" + t["datatype"], t["shape"][1:]) for t in described
            ]
        assert platform in (None, parsed.platform)
    with pytest.raises(InferenceServerException, match="not served"):
        client.get_model_config("nope")


@pytest.mark.parametrize("binary_in", [True, False])
@pytest.mark.parametrize("binary_out", [True, False])
def test_infer_through_tritonclient(served, runs, binary_in, binary_out):
    client = triton.InferenceServerClient(served.host)
    rows = iris_rows(runs)
    tensor = triton.InferInput("numeric", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows, binary_data=binary_in)
    outputs = [triton.InferRequestedOutput(OUTPUT, binary_data=binary_out)]
    for version in ("", "1"):
        result = client.infer("iris", [tensor], model_version=version, outputs=outputs, request_id="req-7")
        assert result.get_response()["id"] == "req-7"
        assert result.get_response()["model_version"] == "1"
        np.testing.assert_allclose(result.as_numpy(OUTPUT), reference(runs, rows), atol=1e-5)
    default = client.infer("iris", [tensor])  # no outputs named: all of them, binary
    np.testing.assert_allclose(default.as_numpy(OUTPUT), reference(runs, rows), atol=1e-5)


def test_gzip_and_deflate_requests(served, runs):
    client = triton.InferenceServerClient(served.host)
    rows = iris_rows(runs)
    tensor = triton.InferInput("numeric", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows)
    for algorithm in ("gzip", "deflate"):
        result = client.infer("iris", [tensor], request_compression_algorithm=algorithm)
        np.testing.assert_allclose(result.as_numpy(OUTPUT), reference(runs, rows), atol=1e-5)
    answer = httpx.post(f"{served.url}/v2/models/iris/infer", content=b"not gzip", headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 400 and "not valid gzip" in answer.json()["error"]


def test_text_model_int64_binary_and_short_sequences(served, runs):
    client = triton.InferenceServerClient(served.host)
    run = runs["text"]
    batch = run.splits()["test"].tensors
    ids, cats = batch["text.text"][:4].numpy(), batch["categorical"][:4].numpy()
    inputs = []
    for name, array in (("categorical", cats), ("text.text", ids)):
        tensor = triton.InferInput(name, list(array.shape), "INT64")
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    out = client.infer("text", inputs).as_numpy(OUTPUT)
    import torch

    with torch.inference_mode():
        expected = run.model({"categorical": torch.from_numpy(cats), "text.text": torch.from_numpy(ids)}).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_raw_http_json_and_binary(served, runs):
    rows = iris_rows(runs, 3)
    url = f"{served.url}/v2/models/iris/infer"
    body = {"id": "a1", "inputs": [{"name": "numeric", "shape": [3, 4], "datatype": "FP32", "data": rows.tolist()}]}
    answer = httpx.post(url, json=body)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    payload = answer.json()
    assert payload["id"] == "a1" and payload["model_name"] == "iris"
    out = payload["outputs"][0]
    assert out["name"] == OUTPUT and out["datatype"] == "FP32" and out["shape"] == [3, 3]
    np.testing.assert_allclose(np.reshape(out["data"], (3, 3)), reference(runs, rows), atol=1e-5)
    # binary in, binary out
    blob = rows.astype("<f4").tobytes()
    head = json.dumps({"inputs": [{"name": "numeric", "shape": [3, 4], "datatype": "FP32",
                                   "parameters": {"binary_data_size": len(blob)}}],
                       "parameters": {"binary_data_output": True}}).encode()  # fmt: skip
    answer = httpx.post(url, content=head + blob, headers={"Inference-Header-Content-Length": str(len(head))})
    assert answer.status_code == 200
    n = int(answer.headers["Inference-Header-Content-Length"])
    meta = json.loads(answer.content[:n])
    assert meta["outputs"][0]["parameters"]["binary_data_size"] == 3 * 3 * 4
    values = np.frombuffer(answer.content[n:], dtype="<f4").reshape(3, 3)
    np.testing.assert_allclose(values, reference(runs, rows), atol=1e-5)
    for path in (
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/iris",
        "/v2/models/iris/versions/1",
        "/v2/models/iris/ready",
        "/v2/models/iris/versions/1/ready",
        "/v2/models/stats",
        "/metrics",
    ):
        assert httpx.get(served.url + path).status_code == 200, path
    assert httpx.get(served.url + "/v2/models/nope").json() == {"error": "model 'nope' is not served here"}


def test_openapi_documents_both(served):
    doc = httpx.get(f"{served.url}/openapi.json").json()
    assert "/v2/models/{name}/infer" in doc["paths"] and "/v2/models/{name}/predict" in doc["paths"]
    body = doc["paths"]["/v2/models/{name}/infer"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/InferRequest")
    assert {"InferRequest", "PredictRequest", "Tensor"} <= set(doc["components"]["schemas"])


MALFORMED = [
    ("bad json", b"{not json", {}, "not valid JSON"),
    ("no inputs", b'{"inputs": []}', {}, "non-empty list"),
    ("wrong shape", json.dumps({"inputs": [{"name": "numeric", "shape": [1, 5], "datatype": "FP32",
                                            "data": [1, 2, 3, 4, 5]}]}).encode(), {}, "shape"),
    ("wrong count", json.dumps({"inputs": [{"name": "numeric", "shape": [2, 4], "datatype": "FP32",
                                            "data": [1, 2, 3, 4]}]}).encode(), {}, "needs 8"),
    ("wrong datatype", json.dumps({"inputs": [{"name": "numeric", "shape": [1, 4], "datatype": "INT64",
                                               "data": [1, 2, 3, 4]}]}).encode(), {}, "datatype FP32"),
    ("strings", json.dumps({"inputs": [{"name": "numeric", "shape": [1, 4], "datatype": "FP32",
                                        "data": ["a", "b", "c", "d"]}]}).encode(), {}, "FP32 numbers"),
    ("unknown input", json.dumps({"inputs": [{"name": "pixels", "shape": [1, 4], "datatype": "FP32",
                                              "data": [1, 2, 3, 4]}]}).encode(), {}, "no input 'pixels'"),
    ("truncated binary", json.dumps({"inputs": [{"name": "numeric", "shape": [2, 4], "datatype": "FP32",
                                                 "parameters": {"binary_data_size": 32}}]}).encode() + b"\0" * 20,
     "header", "ends after 20"),
    ("header too long", b'{"inputs": []}', {"Inference-Header-Content-Length": "999"}, "does not fit"),
]  # fmt: skip


@pytest.mark.parametrize("case", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_bodies_are_4xx_with_an_oip_error(served, case):
    _, body, headers, message = case
    if headers == "header":
        headers = {"Inference-Header-Content-Length": str(body.index(b"\0"))}
    answer = httpx.post(f"{served.url}/v2/models/iris/infer", content=body, headers=headers)
    assert answer.status_code == 400, answer.text
    assert set(answer.json()) == {"error"} and message in answer.json()["error"]


def test_tritonclient_sees_the_error(served):
    client = triton.InferenceServerClient(served.host)
    tensor = triton.InferInput("numeric", [1, 5], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 5), np.float32))
    with pytest.raises(InferenceServerException, match="shape"):
        client.infer("iris", [tensor])


@pytest.mark.parametrize("binary_in", [True, False])
def test_text_sent_as_bytes_is_tokenized_as_in_training(served, runs, binary_in):
    """tritonclient sends raw strings as BYTES; they score as the same text sent as token ids."""
    from tests.serve.conftest import load, text_frame

    frame = text_frame(6)
    frame.loc[0, "text"] = "今天 rain 下雨"  # not only ASCII
    ids = load(runs["text"]).encode(frame[["text", "source"]].to_dict("records"))
    client = triton.InferenceServerClient(served.host)
    source = triton.InferInput("categorical", list(ids["categorical"].shape), "INT64")
    source.set_data_from_numpy(ids["categorical"], binary_data=binary_in)
    as_ids = triton.InferInput("text.text", list(ids["text.text"].shape), "INT64")
    as_ids.set_data_from_numpy(ids["text.text"], binary_data=binary_in)
    as_text = triton.InferInput("text.text", [len(frame), 1], "BYTES")
    as_text.set_data_from_numpy(frame[["text"]].to_numpy(dtype=object), binary_data=binary_in)
    expected = client.infer("text", [source, as_ids]).as_numpy(OUTPUT)
    np.testing.assert_allclose(client.infer("text", [source, as_text]).as_numpy(OUTPUT), expected, rtol=1e-5)


def test_malformed_bytes_inputs_are_400(served):
    url = f"http://{served.host}/v2/models/text/infer"
    ids = {"name": "categorical", "shape": [1, 1], "datatype": "INT64", "data": [0]}
    cases = [
        {"name": "text.text", "shape": [2, 1], "datatype": "BYTES", "data": ["only one"]},
        {"name": "text.text", "shape": [1, 3], "datatype": "BYTES", "data": ["a", "b", "c"]},
        {"name": "text.text", "shape": [1], "datatype": "BYTES", "data": [7]},
        {"name": "categorical", "shape": [1, 1], "datatype": "BYTES", "data": ["not a text input"]},
    ]
    for text in cases:
        r = httpx.post(url, json={"inputs": [text] if text["name"] == "categorical" else [ids, text]})
        assert r.status_code == 400 and "error" in r.json(), (text, r.text)
    head = json.dumps({"inputs": [ids, {"name": "text.text", "shape": [1], "datatype": "BYTES",
                                        "parameters": {"binary_data_size": 9}}]}).encode()  # fmt: skip
    truncated = head + (20).to_bytes(4, "little") + b"short"  # says 20 bytes, holds 5
    r = httpx.post(url, content=truncated, headers={"Inference-Header-Content-Length": str(len(head))})
    assert r.status_code == 400 and "BYTES element" in r.json()["error"]

"""The Open Inference Protocol (KServe / Triton "v2" REST) inference bodies, JSON and binary.

A request body is JSON, or (the binary tensor data extension) JSON of
``Inference-Header-Content-Length`` bytes followed by the raw little-endian tensors of the
inputs whose ``parameters.binary_data_size`` is set, in the order the inputs are listed. A
response holds each output as JSON ``data`` or, when the request asked for it (an output's
``parameters.binary_data``, or the request's ``parameters.binary_data_output``), as raw bytes
after the JSON, with ``parameters.binary_data_size`` and the same header. Every check failure is
a `BadRequest` whose message names the tensor: the server answers it as 400 ``{"error": ...}``.
"""

from __future__ import annotations

import gzip
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from modelworks.serve.model import NUMPY_TYPES, TensorSpec

HEADER_LENGTH = "Inference-Header-Content-Length"
BINARY_CONTENT_TYPE = "application/octet-stream"


Tokenize = Callable[[str, list[str]], np.ndarray]  # (input name, texts) -> (n, length) int64 token ids


class BadRequest(ValueError):
    """A malformed inference request (answered 400)."""


@dataclass
class InferRequest:
    id: str | None
    inputs: dict[str, np.ndarray]
    rows: int
    binary_outputs: dict[str, bool]  # requested output -> as binary
    timeout_s: float | None = None  # the client's own timeout (Triton's "timeout" parameter, in microseconds)
    parameters: dict[str, Any] = field(default_factory=dict)


def decompress(body: bytes, encoding: str | None) -> bytes:
    """The body as sent before Content-Encoding (gzip or deflate, as tritonclient may send it)."""
    try:
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
    except (OSError, zlib.error, EOFError) as e:
        raise BadRequest(f"the body is not valid {encoding} data") from e
    if encoding not in (None, "", "identity"):
        raise BadRequest(f"unsupported Content-Encoding {encoding!r}; use gzip, deflate or none")
    return body


def parse_infer(body: bytes, header_length: str | None, inputs: Sequence[TensorSpec],
                outputs: Sequence[TensorSpec], tokenize: Tokenize | None = None) -> InferRequest:  # fmt: skip
    """An inference request checked against the model's tensors.

    With `tokenize` (input name, texts -> token ids), a text input (INT64 token ids) may also be
    sent as BYTES: raw strings, tokenized by the run's saved tokenizer (tritonclient sends text so).
    """
    if header_length is not None:
        try:
            n = int(header_length)
        except ValueError as e:
            raise BadRequest(f"{HEADER_LENGTH} must be an integer; got {header_length!r}") from e
        if not 0 < n <= len(body):
            raise BadRequest(f"{HEADER_LENGTH} {n} does not fit a body of {len(body)} bytes")
        head, binary = body[:n], memoryview(body)[n:]
    else:
        head, binary = body, memoryview(b"")
    try:
        request = orjson.loads(head)  # strict JSON (no NaN), and about ten times faster than json.loads
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"the request is not valid JSON: {e}") from e
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list) or not request["inputs"]:
        raise BadRequest("the request must be a JSON object with a non-empty list 'inputs'")
    parameters = _object(request.get("parameters"), "parameters")
    specs = {t.name: t for t in inputs}
    tensors: dict[str, np.ndarray] = {}
    offset = 0
    for i, raw in enumerate(request["inputs"]):
        tensor, offset = _input(i, raw, specs, binary, offset, tokenize)
        if tensor[0] in tensors:
            raise BadRequest(f"input {tensor[0]!r} is given twice")
        tensors[tensor[0]] = tensor[1]
    if offset != len(binary):
        raise BadRequest(
            f"the binary data holds {len(binary)} bytes but the inputs' binary_data_size add up to {offset}"
        )
    missing = [name for name in specs if name not in tensors]
    if missing:
        raise BadRequest(f"input {missing[0]!r} is missing; this model takes {', '.join(specs)}")
    rows = {len(x) for x in tensors.values()}
    if len(rows) != 1:
        raise BadRequest("every input must have the same batch size (first dimension)")
    return InferRequest(
        id=_id(request.get("id")), inputs=tensors, rows=rows.pop(),
        binary_outputs=_requested(request.get("outputs"), outputs, bool(parameters.get("binary_data_output", False))),
        timeout_s=_timeout(parameters.get("timeout")), parameters=parameters,
    )  # fmt: skip


def encode_response(model: str, version: str, request: InferRequest, outputs: dict[str, np.ndarray],
                    specs: Sequence[TensorSpec]) -> tuple[bytes, dict[str, str]]:  # fmt: skip
    """(body, headers) of the inference response: JSON, with binary outputs after it when asked."""
    answer: dict[str, Any] = {"model_name": model, "model_version": version}
    if request.id is not None:
        answer["id"] = request.id
    blobs = []
    listed = []
    for spec in specs:
        if spec.name not in request.binary_outputs:
            continue
        array = np.ascontiguousarray(outputs[spec.name], dtype=NUMPY_TYPES[spec.datatype])
        out: dict[str, Any] = {"name": spec.name, "datatype": spec.datatype, "shape": list(array.shape)}
        if request.binary_outputs[spec.name]:
            blob = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
            out["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            out["data"] = array.ravel().tolist()
        listed.append(out)
    answer["outputs"] = listed
    head = orjson.dumps(answer)
    if not blobs:
        return head, {"Content-Type": "application/json"}
    return b"".join([head, *blobs]), {"Content-Type": BINARY_CONTENT_TYPE, HEADER_LENGTH: str(len(head))}


# ---------------------------------------------------------------------------------- helpers


def _input(i: int, raw: Any, specs: dict[str, TensorSpec], binary: memoryview, offset: int,
           tokenize: Tokenize | None) -> tuple[tuple[str, np.ndarray], int]:  # fmt: skip
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise BadRequest(f"inputs[{i}] must be an object with a name, shape, datatype and data")
    name = raw["name"]
    if name not in specs:
        raise BadRequest(f"inputs[{i}]: this model has no input {name!r}; its inputs: {', '.join(specs)}")
    spec = specs[name]
    datatype = raw.get("datatype")
    if datatype == "BYTES" and spec.pad_id is not None and tokenize is not None:
        return _texts(name, raw, binary, offset, tokenize)
    if datatype != spec.datatype:
        raise BadRequest(f"input {name!r} must have datatype {spec.datatype}; got {datatype!r}")
    shape = raw.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise BadRequest(f"input {name!r}: shape must be a list of non-negative integers; got {shape!r}")
    if len(shape) != len(spec.shape) or any(want not in (-1, got) for want, got in zip(spec.shape, shape, strict=True)):
        raise BadRequest(f"input {name!r} must have shape {spec.shape} (-1: any); got {shape}")
    if shape[0] == 0:
        raise BadRequest(f"input {name!r} has no rows")
    dtype = np.dtype(NUMPY_TYPES[spec.datatype]).newbyteorder("<")
    count = math.prod(shape)
    size = _object(raw.get("parameters"), f"inputs[{i}].parameters").get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size < 0:
            raise BadRequest(f"input {name!r}: binary_data_size must be a non-negative integer")
        if size != count * dtype.itemsize:
            raise BadRequest(
                f"input {name!r}: binary_data_size {size} does not match shape {shape} of "
                f"{spec.datatype} ({count * dtype.itemsize} bytes)"
            )
        if offset + size > len(binary):
            raise BadRequest(f"input {name!r}: the binary data ends after {len(binary) - offset} of its {size} bytes")
        array = np.frombuffer(binary[offset : offset + size], dtype=dtype).astype(dtype.newbyteorder("="))
        return (name, array.reshape(shape)), offset + size
    if "data" not in raw:
        raise BadRequest(f"input {name!r} has neither data nor parameters.binary_data_size")
    try:
        array = np.asarray(raw["data"])
    except ValueError as e:
        raise BadRequest(f"input {name!r}: data is not a regular array of numbers") from e
    kinds = "iuf" if spec.datatype == "FP32" else "iu"
    if array.dtype.kind not in kinds and not (array.size == 0 and array.dtype.kind == "f"):
        raise BadRequest(f"input {name!r}: data must hold {spec.datatype} numbers; got {array.dtype.kind!r} values")
    if array.size != count:
        raise BadRequest(f"input {name!r}: data holds {array.size} values; shape {shape} needs {count}")
    return (name, array.astype(NUMPY_TYPES[spec.datatype]).reshape(shape)), offset


def _texts(name: str, raw: dict[str, Any], binary: memoryview, offset: int, tokenize: Tokenize
           ) -> tuple[tuple[str, np.ndarray], int]:  # fmt: skip
    """A text input sent as BYTES: one UTF-8 string per row (shape [n] or [n, 1]), tokenized as in training.

    JSON: ``data`` lists the strings; binary: each element is a 4-byte little-endian length, then its bytes.
    """
    shape = raw.get("shape")
    if not (isinstance(shape, list) and len(shape) in (1, 2) and all(type(d) is int and d > 0 for d in shape)
            and shape[1:] in ([], [1])):  # fmt: skip
        raise BadRequest(f"input {name!r} as BYTES holds one text per row: shape [n] or [n, 1]; got {shape!r}")
    count = shape[0]
    size = _object(raw.get("parameters"), f"input {name!r} parameters").get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size < 0 or offset + size > len(binary):
            raise BadRequest(f"input {name!r}: binary_data_size must fit the binary data after the JSON")
        items, at, end = [], offset, offset + size
        while at < end:
            if at + 4 > end:
                raise BadRequest(f"input {name!r}: a BYTES element's 4-byte length is cut short")
            n = int.from_bytes(binary[at : at + 4], "little")
            if at + 4 + n > end:
                raise BadRequest(f"input {name!r}: a BYTES element ends after its binary_data_size")
            items.append(bytes(binary[at + 4 : at + 4 + n]))
            at += 4 + n
        offset = end
    else:
        data = raw.get("data")
        items = np.asarray(data, dtype=object).ravel().tolist() if isinstance(data, list) else None
        if items is None:
            raise BadRequest(f"input {name!r} has neither data nor parameters.binary_data_size")
    try:
        texts = [item.decode("utf-8") if isinstance(item, bytes) else item for item in items]
    except UnicodeDecodeError as e:
        raise BadRequest(f"input {name!r}: the text is not UTF-8") from e
    if len(texts) != count or not all(isinstance(t, str) for t in texts):
        raise BadRequest(f"input {name!r}: shape {shape} needs {count} strings; got {len(texts)} values")
    return (name, tokenize(name, texts)), offset


def _requested(raw: Any, outputs: Sequence[TensorSpec], binary_default: bool) -> dict[str, bool]:
    """{output name: as binary} for the outputs to return (all of them when none is named)."""
    if raw is None:
        return {t.name: binary_default for t in outputs}
    if not isinstance(raw, list):
        raise BadRequest("outputs must be a list of {name, parameters}")
    names = [t.name for t in outputs]
    wanted = {}
    for i, out in enumerate(raw):
        if not isinstance(out, dict) or out.get("name") not in names:
            raise BadRequest(f"outputs[{i}]: this model has no such output; its outputs: {', '.join(names)}")
        parameters = _object(out.get("parameters"), f"outputs[{i}].parameters")
        if parameters.get("classification") or parameters.get("class_count"):
            raise BadRequest("the classification extension is not supported; use POST .../predict for labels")
        wanted[out["name"]] = bool(parameters.get("binary_data", binary_default))
    return wanted


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{where} must be an object")
    return value


def _id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest("id must be a string")
    return value


def _timeout(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise BadRequest("parameters.timeout must be a positive number of microseconds")
    return value / 1e6

"""A served model's configuration as Triton's ``ModelConfig`` in JSON (``GET .../config``).

The same message that ``config.pbtxt`` holds in protobuf text (`modelworks.exporting.triton`),
here for the model as this server runs it: its tensors (dims without the batch axis, -1 a free
axis), its runtime, and its dynamic batching settings. tritonclient's ``get_model_config`` reads
it, and it parses into ``model_config_pb2.ModelConfig`` (the tests check both).
"""

from __future__ import annotations

from typing import Any

from modelworks.serve.modelset import Deployment

TRITON_TYPES = {"FP32": "TYPE_FP32", "INT64": "TYPE_INT64", "BYTES": "TYPE_STRING"}  # OIP datatype -> Triton's


def model_config(d: Deployment) -> dict[str, Any]:
    """Triton's ModelConfig of deployment `d`, as JSON."""
    onnx = d.model.runtime == "onnx"
    gpu = str(d.model.device).startswith("cuda")

    def tensor(t: Any) -> dict[str, Any]:
        return {"name": t.name, "data_type": TRITON_TYPES[t.datatype], "dims": t.shape[1:]}

    return {
        "name": d.name,
        "platform": "onnxruntime_onnx" if onnx else "pytorch_libtorch",
        "backend": "onnxruntime" if onnx else "pytorch",
        "version_policy": {"specific": {"versions": [int(d.version)]}} if d.version.isdigit() else {"latest": {}},
        "max_batch_size": d.batcher.max_batch,
        "input": [tensor(t) for t in d.model.inputs],
        "output": [tensor(t) for t in d.model.outputs],
        "dynamic_batching": {
            "max_queue_delay_microseconds": round(d.batcher.max_delay_s * 1e6),
            "default_queue_policy": {"max_queue_size": d.batcher.max_queue},
        },
        "instance_group": [{"name": d.name, "kind": "KIND_GPU" if gpu else "KIND_CPU", "count": 1}],
    }

"""Triton: a model repository that NVIDIA Triton (or KServe's Triton runtime) serves unchanged.

    modelworks export RUN --format triton [--output DIR]

The ONNX export (`modelworks.exporting.onnx`, checked against PyTorch the same way) laid out as
Triton reads a repository, with ``config.pbtxt`` declaring the tensors and dynamic batching::

    DIR/NAME/config.pbtxt       platform onnxruntime_onnx, max_batch_size, inputs, outputs, dynamic_batching
    DIR/NAME/1/model.onnx       version 1
    DIR/inputs.json, ...        the export's companions (Triton skips files beside model folders)

Start Triton with ``tritonserver --model-repository DIR``. With ``max_batch_size`` above zero,
Triton's dims leave out the batch axis; -1 marks a free axis (a text's length).
"""

from __future__ import annotations

import shutil

from modelworks.exporting.formats import ExportJob, OnnxOptions, TritonOptions
from modelworks.exporting.interface import OUTPUT, dynamic_axes, input_names
from modelworks.exporting.onnx import export_onnx
from modelworks.store.export import FormatRecord
from modelworks.store.files import ONNX_MODEL, TRITON_CONFIG

TRITON_TYPES = {"float32": "TYPE_FP32", "int64": "TYPE_INT64"}


def export_triton(job: ExportJob) -> FormatRecord:  # declared in modelworks.exporting.formats
    """Write the repository into job.folder: the checked ONNX model and its config.pbtxt."""
    options: TritonOptions = job.options
    name = options.name or model_name(job.run.name)
    onnx_job = ExportJob(**{**job.__dict__, "options": OnnxOptions(opset=options.opset)})
    record = export_onnx(onnx_job)
    version_dir = job.folder / name / "1"
    version_dir.mkdir(parents=True)
    shutil.move(job.folder / ONNX_MODEL, version_dir / ONNX_MODEL)
    free = record.dynamic_axes or {}
    (job.folder / name / TRITON_CONFIG).write_text(config_pbtxt(job, name, options, free), encoding="utf-8")
    record.file = f"{name}/1/{ONNX_MODEL}"
    record.exporter += "; Triton model repository"
    return record


def config_pbtxt(job: ExportJob, name: str, options: TritonOptions, free: dict[str, dict[str, str]]) -> str:
    """The model's config.pbtxt (protobuf text of Triton's ModelConfig)."""
    schema = job.run.schema
    lines = [f'name: "{name}"', 'platform: "onnxruntime_onnx"', f"max_batch_size: {options.max_batch}", "input ["]
    tensors = []
    for tensor_name, example in zip(input_names(schema), job.example, strict=True):
        dims = [-1 if str(axis) in free.get(tensor_name, {}) else size for axis, size in enumerate(example.shape)][1:]
        dtype = TRITON_TYPES[str(example.dtype).removeprefix("torch.")]
        tensors.append(f'  {{ name: "{tensor_name}" data_type: {dtype} dims: [ {", ".join(map(str, dims))} ] }}')
    lines += [",\n".join(tensors), "]", "output ["]
    lines += [f'  {{ name: "{OUTPUT}" data_type: TYPE_FP32 dims: [ {schema.out_dim} ] }}', "]"]
    lines += ["dynamic_batching {", f"  max_queue_delay_microseconds: {round(options.max_delay_ms * 1000)}", "}"]
    lines += ["instance_group [ { kind: KIND_CPU count: 1 } ]"]
    return "\n".join(lines) + "\n"


def model_name(run_name: str) -> str:
    """A Triton model name from a run folder's name: its timestamp dropped, other characters made safe."""
    parts = run_name.split("-")
    if len(parts) >= 3 and parts[-2].isdigit() and parts[-1].isdigit():
        run_name = "-".join(parts[:-2])
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in run_name) or "model"


__all__ = ["config_pbtxt", "dynamic_axes", "export_triton", "model_name"]

"""ONNX: the model traced by torch.onnx's TorchScript-based exporter, checked in ONNX Runtime.

Why that exporter (``dynamo=False``; deprecated since torch 2.9, still in 2.13) rather than the
torch.export-based default: neither can export packed sequences, so models switch to
export-friendly paths while exporting (RNN: a masked recurrence; MLP: a bag of words without
EmbeddingBag; transformer: plain attention, whose shapes follow the input). With them this
exporter handles all five architectures with a free batch axis and a free text length, in 0.1 to
5 seconds per model. The torch.export-based one gave the same outputs in our trials, but kept an
LSTM's text length free only with a workaround on a private dispatch cache from the second export
of a process on (see pytorch/pytorch#191855 for the related bug), and took 3 to 25 seconds per
model on this machine.

The default opset, 18, is read by every current ONNX runtime; 17 to 20 (the most this exporter
writes) can be asked for. ``quantize: int8`` adds ``model.int8.onnx``, made by ONNX Runtime's
dynamic quantization (int8 weights, activations quantized on the fly; convolutions stay float);
its record holds its size and the change it makes to the task's main metric on the check split.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from modelworks.errors import UserError
from modelworks.exporting.check import metric_change, run_batches, verify
from modelworks.exporting.formats import ExportJob, OnnxOptions
from modelworks.exporting.guard import LayerTracker, tracing, unexportable
from modelworks.exporting.interface import OUTPUT, dynamic_axes
from modelworks.store.export import FormatRecord, Int8Copy
from modelworks.store.files import ONNX_INT8_MODEL as INT8_FILE
from modelworks.store.files import ONNX_MODEL as MODEL_FILE


def export_onnx(job: ExportJob) -> FormatRecord:  # declared in modelworks.exporting.formats
    """Write model.onnx (and model.int8.onnx), check them, and return their export.json fields."""
    ort = _onnxruntime()
    options: OnnxOptions = job.options
    path = job.folder / MODEL_FILE
    with tracing(job.model) as tracker:
        axes = dynamic_axes(job.run.schema)
        _export(job, path, axes, tracker)
        check = verify("ONNX", _session_runner(ort, path, job.names), job, tracker)
        if check.free_sequence is False:  # this model's graph fixes the text length: declare it so
            axes = dynamic_axes(job.run.schema, free_sequence=False)
            _export(job, path, axes, tracker)
            check = verify("ONNX", _session_runner(ort, path, job.names), job, tracker)
    record = FormatRecord(
        file=MODEL_FILE,
        size_bytes=path.stat().st_size,
        opset=options.opset,
        exporter="torch.onnx.export (TorchScript-based, dynamo=False)",
        dynamic_axes={name: {str(axis): label for axis, label in free.items()} for name, free in axes.items()},
        runtime=f"onnxruntime {ort.__version__} CPUExecutionProvider",
        check=check,
        warnings=tracker.warning_records(),
    )
    if options.quantize == "int8":
        record.quantized = _quantize_int8(ort, job, path)
    return record


def _export(job: ExportJob, path: Path, axes: dict[str, dict[int, str]], tracker: LayerTracker) -> None:
    options: OnnxOptions = job.options
    try:
        with torch.no_grad():
            torch.onnx.export(
                job.model,
                job.example,
                str(path),
                dynamo=False,
                opset_version=options.opset,
                input_names=job.names,
                output_names=[OUTPUT],
                dynamic_axes=axes,
            )
    except Exception as e:  # noqa: BLE001 - any exporter failure becomes one UserError naming the layer
        raise unexportable("ONNX", e, tracker, job.example) from e


def _quantize_int8(ort, job: ExportJob, path: Path) -> Int8Copy:
    """model.int8.onnx by dynamic quantization, with its size and its effect on the main metric."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    # Convolutions stay float: onnxruntime's dynamic ConvInteger ran 7x slower than the float
    # convolution on this project's CPUs (Fashion-MNIST CNN, batch 32); CNNs want static int8.
    ops = [op for op in IntegerOpsRegistry if op != "Conv"]
    target = job.folder / INT8_FILE
    try:
        with _quiet_quantizer():
            quantize_dynamic(str(path), str(target), weight_type=QuantType.QInt8, op_types_to_quantize=ops)
        outputs = run_batches(_session_runner(ort, target, job.names), job.data, job.names)
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own Exception subclasses
        raise UserError(
            f"onnxruntime could not quantize the exported model to int8 and run it: "
            f"{' '.join(str(e).split())[:300]}; export without --quantize"
        ) from e
    run = job.run
    change = metric_change(run.schema, job.data, job.reference, outputs, run.config.evaluate.threshold)
    return Int8Copy(
        file=INT8_FILE,
        method="onnxruntime.quantization.quantize_dynamic (weights QInt8)",
        operators=ops,
        size_bytes=target.stat().st_size,
        float_size_bytes=path.stat().st_size,
        size_ratio=path.stat().st_size / target.stat().st_size,
        split=job.split,
        rows=len(job.data),
        **change,
    )


# ----------------------------------------------------------------------------------- helpers


def _onnxruntime():
    """The onnxruntime module; the exporter needs the onnx package, the check onnxruntime."""
    try:
        import onnx  # noqa: F401
        import onnxruntime
    except ImportError as e:
        raise UserError(
            f"ONNX export needs the onnx and onnxruntime packages ({e.name} is missing): pip install onnx onnxruntime"
        ) from e
    return onnxruntime


def _session_runner(ort, path: Path, names: list[str]):
    """A function from one batch's positional tensors to the model's raw outputs, in onnxruntime."""
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own Exception subclasses (InvalidGraph, ...)
        raise UserError(f"onnxruntime cannot load the exported {path.name}: {' '.join(str(e).split())[:300]}") from e

    def run(inputs: list[torch.Tensor]) -> np.ndarray:
        return session.run([OUTPUT], {name: x.numpy() for name, x in zip(names, inputs, strict=False)})[0]

    return run


@contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """quantize_dynamic logs a suggestion to the root logger on every call; keep it off the console."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)

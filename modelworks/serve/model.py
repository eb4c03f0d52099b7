"""One model loaded for inference: PyTorch eager (the run's safetensors weights) or ONNX Runtime
(a checked ONNX export, fp32 or int8), with explicit thread counts.

A run folder serves with either runtime (ONNX: its ``export/onnx`` folder). An export folder
(ONNX or Triton) serves with ONNX Runtime on its own, wherever it was copied: it carries the
run's config and preprocessing (`modelworks.store.export.StoredExport`), and each file it reads
is checked against the SHA-256 its export.json records.

`ServedModel` speaks tensors (`infer`, the Open Inference Protocol's view, described by
`metadata`) and records (`encode` applies the saved preprocessing, `decode` reads the
outputs as labels and probabilities: the same numbers as ``modelworks predict``).

Only two kinds of file are ever opened for weights: ``model.safetensors`` (its header checked
first; nothing is unpickled) and ``*.onnx`` (a protobuf graph). Configs and preprocessing state
are YAML and JSON. A pickle renamed to ``model.safetensors`` is refused before it is read.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from modelworks.config.schema import ExperimentConfig
from modelworks.data.preprocess import Preprocessor
from modelworks.data.schema import InputSchema
from modelworks.engine.run import load_run
from modelworks.errors import UserError
from modelworks.exporting.interface import OUTPUT, describe_inputs
from modelworks.models.inference import inference_form
from modelworks.serve.precision import Precision, check_precision
from modelworks.store.export import InputsDescription, StoredExport, is_export
from modelworks.store.files import CONFIG, EXPORT_DIR, WEIGHTS
from modelworks.store.run import StoredRun
from modelworks.training.losses import outputs_to_predictions

Runtime = Literal["torch", "onnx"]
DATATYPES = {"float32": "FP32", "int64": "INT64"}  # numpy dtype name -> OIP datatype
NUMPY_TYPES = {"FP32": np.float32, "INT64": np.int64}
MAX_SAFETENSORS_HEADER = 100 << 20


@dataclass(frozen=True)
class TensorSpec:
    """One input or output tensor: OIP datatype and shape (-1: a free axis)."""

    name: str
    datatype: str
    shape: list[int]
    pad_id: int | None = None  # text inputs: what shorter sequences are padded with in a batch

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": self.shape}


class ServedModel:
    """A model ready to answer: `infer` on tensors, `encode`/`decode` between records and tensors."""

    def __init__(
        self, config: ExperimentConfig, preprocessor: Preprocessor, description: InputsDescription, runtime: Runtime,
        name: str, version: str, *, session: Any = None, module: nn.Module | None = None,
        device: torch.device = torch.device("cpu"), precision: Precision = "fp32",
    ) -> None:  # fmt: skip
        self.config = config  # the resolved experiment: features, target, threshold
        self.preprocessor = preprocessor  # fitted: what encode and decode apply
        self.name = name
        self.version = version
        self.runtime = runtime
        self.session = session  # onnxruntime.InferenceSession, or None for torch
        self.module = module  # the PyTorch model (eval mode, on `device`), or None for onnx
        self.device = device
        self.precision = precision  # torch: bf16 runs the forward pass under autocast
        text: dict[str, int] = {}  # text input -> pad id
        for spec in description.inputs:
            if spec.model_extra and "pad_id" in spec.model_extra:
                text[spec.name] = int(spec.model_extra["pad_id"])
        self.inputs = [
            TensorSpec(spec.name, DATATYPES[spec.dtype], [d if isinstance(d, int) else -1 for d in spec.shape],
                       text.get(spec.name))
            for spec in description.inputs
        ]  # fmt: skip
        out = description.output
        self.outputs = [
            TensorSpec(out.name, DATATYPES[out.dtype], [d if isinstance(d, int) else -1 for d in out.shape])
        ]
        self.warmed = False

    # ------------------------------------------------------------------------------ loading

    @classmethod
    def load(
        cls, path: Path, *, runtime: Runtime = "torch", device: str = "cpu", threads: int | None = None,
        name: str | None = None, version: str = "1", int8: bool = False, precision: Precision = "fp32",
    ) -> ServedModel:  # fmt: skip
        """A run folder or an export folder loaded with `runtime`.

        ``torch`` (a run folder only) reads the run's ``model.safetensors``. ``onnx`` reads an ONNX
        export: `path` itself when it is an export folder (ONNX or Triton; the run folder is not
        needed), else ``RUN/export/onnx``; ``int8``: its ``model.int8.onnx``. `threads` sets the
        intra-op threads (torch: for the whole process). The torch model is served in its
        `inference_form` (adapters merged, convolutions channels-last); ``precision="bf16"`` runs it
        under bfloat16 autocast: several times faster on CPUs with AMX or AVX-512 BF16 and on GPUs,
        at bf16's rounding (about 3 significant digits in the layers it covers).
        """
        path = Path(path)
        if runtime not in ("torch", "onnx"):
            raise UserError(f"runtime must be torch or onnx; got {runtime!r}")
        check_precision(runtime, precision)
        if is_export(path):
            export = _onnx_export(path, runtime)
            return cls._onnx(export, export, _default_name(Path(export.record.run)), name, version, threads, device,
                             int8)  # fmt: skip
        if not (path / CONFIG).is_file():
            raise UserError(f"{path} is neither a run folder (no {CONFIG}) nor an export folder")
        if runtime == "onnx":
            if not is_export(path / EXPORT_DIR / "onnx"):
                raise UserError(f"{path} has no ONNX export; make one first: modelworks export {path} --format onnx")
            export = StoredExport(path / EXPORT_DIR / "onnx")
            return cls._onnx(StoredRun(path), export, _default_name(path), name, version, threads, device, int8)
        check_safetensors(path / WEIGHTS)
        if threads is not None:
            torch.set_num_threads(threads)
        run = load_run(path, device=device, base_dir=path)
        state = run.preprocess.state
        description = InputsDescription.model_validate(describe_inputs(run.config, run.schema, state))
        return cls(run.config, run.preprocessor, description, runtime, name or _default_name(path), version,
                   module=inference_form(run.model), device=run.device, precision=precision)  # fmt: skip

    @classmethod
    def _onnx(
        cls, source: StoredRun | StoredExport, export: StoredExport, default_name: str, name: str | None, version: str,
        threads: int | None, device: str, int8: bool,
    ) -> ServedModel:  # fmt: skip
        """The ONNX model of `export`, with the config and preprocessing of `source` (the run, or
        the export's own copies)."""
        config = source.config
        state = source.preprocess.state
        pre = Preprocessor.from_state(config.data.features, config.data.target, config.data.task, state)
        own = InputsDescription.model_validate(describe_inputs(config, pre.schema_, state))
        description = export.inputs  # the export's tensor interface: a text length fixed by the export shows there
        if [s.name for s in description.inputs] != [s.name for s in own.inputs]:
            raise UserError(f"{export.path} was exported from another model: its inputs differ from the run's")
        session = _onnx_session(export.model_file(int8), threads, device)
        return cls(config, pre, description, "onnx", name or default_name, version, session=session)

    @property
    def schema(self) -> InputSchema:
        """The model's input schema: task, classes, inputs."""
        return self.preprocessor.schema_

    # ------------------------------------------------------------------------------ tensors

    def metadata(self) -> dict[str, Any]:
        """The OIP model metadata: name, versions, platform, inputs and outputs."""
        platform = "onnxruntime_onnx" if self.runtime == "onnx" else "pytorch_libtorch"
        return {
            "name": self.name, "versions": [self.version], "platform": platform,
            "inputs": [t.to_json() for t in self.inputs], "outputs": [t.to_json() for t in self.outputs],
        }  # fmt: skip

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One forward pass on a batch of positional tensors; {"outputs": (batch, out_dim) float32}."""
        names = [t.name for t in self.inputs]
        if self.session is not None:
            return {OUTPUT: self.session.run([OUTPUT], {n: inputs[n] for n in names})[0]}
        batch = {n: torch.from_numpy(np.ascontiguousarray(inputs[n])).to(self.device) for n in names}
        with torch.inference_mode(), torch.autocast(self.device.type, torch.bfloat16, self.precision == "bf16"):
            out = self.module(batch)  # (batch, out_dim)
        return {OUTPUT: out.float().cpu().numpy()}

    def tokenize(self, name: str, texts: list[str]) -> np.ndarray:
        """Token ids of `texts` for text input `name` (``text.<feature>``), by the saved tokenizer."""
        fitter = self.preprocessor.fitters_[name.split(".", 1)[1]]
        return np.ascontiguousarray(fitter.transform(pd.Series(texts, dtype=object)), dtype=np.int64)  # (n, length)

    def example(self, rows: int = 1) -> dict[str, np.ndarray]:
        """A batch of `rows` zero (or padding) inputs, for warm-up."""
        example = {}
        for t in self.inputs:
            shape = [rows] + [d if d > 0 else 8 for d in t.shape[1:]]
            example[t.name] = np.full(shape, t.pad_id or 0, dtype=NUMPY_TYPES[t.datatype])
        return example

    def warm_up(self, rows: tuple[int, ...] = (1, 8)) -> None:
        """Run a few batches so that the first request does not pay for lazy initialization."""
        for n in rows:
            self.infer(self.example(n))
        self.warmed = True

    # ------------------------------------------------------------------------------ records

    @property
    def fields(self) -> list[str]:
        """The raw fields a /predict record holds: the model's feature columns."""
        return [f.name for f in self.config.data.features]

    def encode(self, records: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        """Raw records (table rows, text, base64 images) -> input tensors, by the saved preprocessing.

        A record missing a field, a field of the wrong kind, or an unknown field is a UserError
        naming it.
        """
        if not isinstance(records, list) or not records:
            raise UserError("instances must be a non-empty list of records")
        kinds = {f.name: f.type for f in self.config.data.features}
        target = self.config.data.target
        rows = []
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                raise UserError(f"instances[{i}] must be an object of fields; got {type(record).__name__}")
            unknown = [k for k in record if k not in kinds and k != target]
            if unknown:
                raise UserError(
                    f"instances[{i}].{unknown[0]}: not a field of this model; its fields: {', '.join(kinds)}"
                )
            rows.append({name: _field(i, name, kind, record) for name, kind in kinds.items()})
        frame = pd.DataFrame(rows, columns=list(kinds))
        for name, kind in kinds.items():
            if kind == "image":
                frame[name] = pd.Series([row[name] for row in rows], dtype=object)
        pre = self.preprocessor
        dropped = pre.drop_mask(frame, with_target=False)
        if dropped.any():
            i = int(np.argmax(dropped))
            field = next(n for n in kinds if frame[n].isna().iloc[i])
            raise UserError(f"instances[{i}].{field}: missing, and this model cannot score a row without it")
        tensors = pre.transform(frame, with_target=False)
        return {t.name: np.ascontiguousarray(tensors[t.name].numpy()) for t in self.inputs}

    def decode(self, outputs: Mapping[str, np.ndarray], n: int) -> list[dict[str, Any]]:
        """The first `n` rows of raw outputs as {"prediction": label or value, "probabilities": {class: p}}."""
        task = self.schema.task
        out = outputs_to_predictions(task, torch.from_numpy(np.asarray(outputs[OUTPUT][:n])))
        if task == "regression":
            return [{"prediction": float(v)} for v in out]
        threshold = self.config.evaluate.threshold
        index = (out >= threshold).astype(int) if task == "binary" else out.argmax(1)
        labels = self.preprocessor.decode_target(index)
        probs = np.stack([1 - out, out], 1) if task == "binary" else out
        names = self.schema.class_names or []
        return [
            {"prediction": _plain(label), "probabilities": {str(c): float(p) for c, p in zip(names, row, strict=True)}}
            for label, row in zip(labels, probs, strict=True)
        ]


# ---------------------------------------------------------------------------------- helpers


def check_safetensors(path: Path) -> None:
    """Refuse `path` unless it starts like a safetensors file (an 8-byte header length, then a JSON
    object). Nothing but that header is read here; safetensors itself never unpickles."""
    refuse = f"{path} is not a safetensors file ({{}}); weights are only loaded from safetensors, never unpickled"
    if not path.is_file():
        raise UserError(f"{path.parent} has no {path.name}: not a finished run")
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise UserError(refuse.format("too short"))
        (n,) = struct.unpack("<Q", head)
        if n < 2 or n > MAX_SAFETENSORS_HEADER or 8 + n > path.stat().st_size:
            raise UserError(refuse.format("no valid header length; a pickle, for one, starts differently"))
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise UserError(refuse.format("its header is not JSON")) from e
    if not isinstance(header, dict):
        raise UserError(refuse.format("its header is not a JSON object"))


def _onnx_export(path: Path, runtime: Runtime) -> StoredExport:
    """Export folder `path`, if ONNX Runtime can serve it on its own."""
    export = StoredExport(path)
    record = export.record
    if record.format not in ("onnx", "triton"):
        raise UserError(f"{path} is a {record.format} export; serving an export folder needs an ONNX or Triton export")
    if runtime == "torch":
        raise UserError(
            f"{path} is an {record.format} export: it holds no PyTorch weights ({WEIGHTS}); serve it with "
            f"--runtime onnx, or serve its run folder with --runtime torch"
        )
    return export


def _onnx_session(path: Path, threads: int | None, device: str) -> Any:
    if path.suffix != ".onnx" or not path.is_file():
        raise UserError(f"no ONNX model at {path}" + (" (export with --quantize int8)" if "int8" in path.name else ""))
    import onnxruntime as ort  # lazy: only the onnx runtime needs it

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own Exception subclasses
        raise UserError(f"onnxruntime cannot load {path}: {' '.join(str(e).split())[:300]}") from e


def _default_name(run_dir: Path) -> str:
    """A model name for URLs: the run folder's name without its timestamp, URL-safe."""
    name = run_dir.name
    parts = name.split("-")
    if len(parts) >= 3 and parts[-2].isdigit() and parts[-1].isdigit():
        name = "-".join(parts[:-2])
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name) or "model"


def _field(i: int, name: str, kind: str, record: dict[str, Any]) -> Any:
    """One raw value, checked against its feature type."""
    if name not in record:
        raise UserError(f"instances[{i}].{name}: missing (give null for a missing value)")
    value = record[name]
    where = f"instances[{i}].{name}"
    if value is None:
        return None
    if kind == "numeric":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{where}: must be a number; got {type(value).__name__}")
        return float(value)
    if kind == "categorical":
        if not isinstance(value, (str, int, float, bool)):
            raise UserError(f"{where}: must be a string, number or boolean; got {type(value).__name__}")
        return value
    if kind == "text":
        if not isinstance(value, str):
            raise UserError(f"{where}: must be a string; got {type(value).__name__}")
        return value
    if kind == "image":
        return _image(where, value)
    return value


def _image(where: str, value: Any) -> np.ndarray:
    """A base64-encoded image file (PNG, JPEG, ...) as uint8 pixels (H, W) or (H, W, C)."""
    from PIL import Image, UnidentifiedImageError  # lazy: only image models need it

    if not isinstance(value, str):
        raise UserError(f"{where}: must be a base64-encoded image file; got {type(value).__name__}")
    try:
        data = base64.b64decode(value.split(",", 1)[-1] if value.startswith("data:") else value, validate=True)
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if im.mode not in ("L", "RGB"):
                im = im.convert("RGB" if im.mode in ("RGBA", "P", "CMYK", "YCbCr") else "L")
            return np.asarray(im, dtype=np.uint8)
    except (binascii.Error, ValueError) as e:
        raise UserError(f"{where}: not valid base64") from e
    except (UnidentifiedImageError, OSError) as e:
        raise UserError(f"{where}: not a readable image file ({e})") from e


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


__all__ = ["Runtime", "ServedModel", "TensorSpec", "check_safetensors"]

"""int8 quantization: dynamic (weights int8, activations quantized on the fly) and static (FX graph
mode, activations calibrated on training batches).

``quantize-dynamic`` swaps Linear, LSTM and GRU layers for their int8 versions (weights per output
channel, activations scaled per batch) and, optionally, embedding tables for weight-only int8
tables with per-row scales; it suits any architecture, and is what shrinks a BERT-sized encoder.
``quantize-static`` traces the model with torch.fx, folds batch norms into convolutions, observes
activation ranges on `calibration_batches` training batches and runs convolutions and linear
layers in int8 end to end; it is for CNNs and MLPs, and names the layer it cannot handle.

Quantized tensors are stored without pickle: each becomes its int8/uint8 integers plus its scales
and zero points (as tensors, or numbers in the metadata), and the packed-parameter structure of
the quantized modules is recorded in the metadata. Restoring quantizes the freshly built fp32
architecture the same way (the module structure depends only on the config) and loads the stored
integers and scales over it, so the reopened model computes exactly what was measured.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import fx, nn
from torch.ao.nn import quantized as nnq
from torch.ao.nn.quantized.dynamic.modules.rnn import RNNBase as QuantizedRNN
from torch.ao.quantization import (
    default_dynamic_qconfig,
    float_qparams_weight_only_qconfig,
    get_default_qconfig_mapping,
    per_channel_dynamic_qconfig,
    quantize_dynamic,
)
from torch.ao.quantization.quantization_mappings import get_default_dynamic_quant_module_mappings
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

from modelworks.compression.measure import is_quantized
from modelworks.compression.method import Compressed, Job, Method, float_copy, quiet_torch_ao
from modelworks.compression.methods import QuantizeDynamicConfig, QuantizeStaticConfig
from modelworks.data.schema import TARGET
from modelworks.errors import UserError
from modelworks.models.inference import merge_adapters

BACKEND = "x86"  # fbgemm kernels with onednn where they are faster; AVX2 is enough
CPU_FP32 = {"device": "cpu", "precision": "fp32"}  # quantized kernels run on the CPU only

# --------------------------------------------------------------------------------- dynamic


_DYNAMIC = {
    "lstm": (nn.LSTM, default_dynamic_qconfig),
    "gru": (nn.GRU, default_dynamic_qconfig),
    "embedding": (nn.Embedding, float_qparams_weight_only_qconfig),
}


class QuantizedEmbedding(nnq.Embedding):
    """torch's int8 embedding table, also for index tensors that are not contiguous (BERT looks
    up its token types through an expanded, stride-0 tensor, which the int8 kernel refuses)."""

    @classmethod
    def from_float(cls, mod: nn.Embedding, use_precomputed_fake_quant: bool = False) -> QuantizedEmbedding:
        quantized = nnq.Embedding.from_float(mod, use_precomputed_fake_quant)
        out = cls(mod.num_embeddings, mod.embedding_dim)
        out.set_weight(quantized.weight())
        return out

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        return super().forward(indices.contiguous())


@contextmanager
def quantizing() -> Iterator[None]:
    """Around one torch.ao quantization step: the x86 backend's kernels, and torch.ao's deprecation
    notices kept off the console. The previous backend and warning filters are restored afterwards."""
    engine = torch.backends.quantized.engine
    torch.backends.quantized.engine = BACKEND
    try:
        with quiet_torch_ao():
            yield
    finally:
        torch.backends.quantized.engine = engine


def dynamic_int8(model: nn.Module, cfg: QuantizeDynamicConfig) -> nn.Module:
    """`model` (float, eval mode) with the chosen layer kinds swapped for int8 ones, in place."""
    linear = per_channel_dynamic_qconfig if cfg.linear_weights == "per_channel" else default_dynamic_qconfig
    spec = dict((nn.Linear, linear) if kind == "linear" else _DYNAMIC[kind] for kind in cfg.layers)
    mapping = {**get_default_dynamic_quant_module_mappings(), nn.Embedding: QuantizedEmbedding}
    with quantizing():
        return quantize_dynamic(model, spec, dtype=torch.qint8, mapping=mapping, inplace=True)


def _apply_dynamic(job: Job, cfg: QuantizeDynamicConfig) -> Compressed:
    model = dynamic_int8(float_copy(job.parent.model), cfg)
    tensors, meta = encode_quantized(model)
    return Compressed(model, tensors, cfg, meta=meta, train=CPU_FP32, notes={"int8_layers": quantized_layers(model)})


def _restore_dynamic(
    model: nn.Module, cfg: QuantizeDynamicConfig, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> nn.Module:
    model = dynamic_int8(merge_adapters(model), cfg)
    load_quantized(model, tensors, meta)
    return model


DYNAMIC = Method(_apply_dynamic, _restore_dynamic)  # declared in modelworks.compression.methods

# ---------------------------------------------------------------------------------- static


# Layers with weights that FX static quantization turns into int8 (batch norm is folded into the
# convolution before it); embeddings are left in float, everything else is refused by name.
_STATIC_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_KEPT_FLOAT = (nn.Embedding, nn.EmbeddingBag)


def check_static(model: nn.Module) -> None:
    """Refuse, by name, every layer holding weights that static int8 cannot run."""
    bad = []
    for name, module in model.named_modules():
        own = [n for n, p in module.named_parameters(recurse=False) if p is not None]
        if own and not isinstance(module, _STATIC_LAYERS + _KEPT_FLOAT):
            bad.append(f"{name or '(model)'} ({type(module).__name__}: {', '.join(own)})")
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise UserError(
            f"quantize-static cannot quantize layer {bad[0]}"
            + (f"; also {'; '.join(bad[1:3])}{more}" if len(bad) > 1 else "")
            + ": static int8 covers convolutions, linear layers and batch norm (CNNs and MLPs); "
            "use --method quantize-dynamic for recurrent, attention and pretrained models"
        )


class _PathTracer(fx.Tracer):
    """torch.fx's tracer, remembering the innermost module it was in when tracing failed."""

    def __init__(self) -> None:
        super().__init__()
        self.failed_in: str | None = None

    def call_module(self, m: nn.Module, forward, args, kwargs):
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:  # noqa: BLE001 - any failure inside a module: remember where, and re-raise
            if self.failed_in is None:
                self.failed_in = f"{self.path_of_module(m)} ({type(m).__name__})"
            raise


def _check_traceable(model: nn.Module) -> None:
    tracer = _PathTracer()
    try:
        tracer.trace(model)
    except Exception as e:  # noqa: BLE001 - torch.fx fails with whatever the traced code raised
        where = tracer.failed_in or f"(model) ({type(model).__name__})"
        raise UserError(
            f"quantize-static cannot trace module {where} with torch.fx: {str(e).splitlines()[0]}; "
            "use --method quantize-dynamic"
        ) from e


def explicit_padding(model: nn.Module) -> nn.Module:
    """Quantized convolutions take padding in pixels, not "same": write it out (odd kernels only)."""
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) and m.padding == "same":
            if any(k % 2 == 0 for k in m.kernel_size):
                raise UserError(
                    f"quantize-static cannot quantize layer {name} (Conv with padding 'same' and an even kernel)"
                )
            m.padding = tuple(d * (k - 1) // 2 for k, d in zip(m.kernel_size, m.dilation, strict=False))
    return model


def static_prepared(model: nn.Module, example: dict[str, torch.Tensor]) -> fx.GraphModule:
    """The traced model with observers in place, ready for calibration batches."""
    check_static(model)
    _check_traceable(explicit_padding(model))
    mapping = get_default_qconfig_mapping(BACKEND)
    for kind in _KEPT_FLOAT:
        mapping = mapping.set_object_type(kind, None)
    try:
        with quantizing():
            return prepare_fx(model, mapping, example_inputs=(example,))
    except Exception as e:  # noqa: BLE001 - torch raises many types; its message is the best description we have
        raise UserError(
            f"quantize-static could not prepare the model: {str(e).splitlines()[0]}; use --method quantize-dynamic"
        ) from e


def static_int8(prepared: fx.GraphModule, batches: list[dict[str, torch.Tensor]]) -> nn.Module:
    """The int8 model: `prepared`'s observers see `batches`, then int8 modules replace the float ones."""
    with quantizing(), torch.no_grad():
        for batch in batches:
            prepared(batch)
        return convert_fx(prepared)


def _apply_static(job: Job, cfg: QuantizeStaticConfig) -> Compressed:
    train = job.splits["train"]
    batches = []
    for batch in train.iterate(cfg.calibration_batch_size, shuffle=True, seed=cfg.seed):
        batch.pop(TARGET)
        batches.append(batch)
        if len(batches) == cfg.calibration_batches:
            break
    model = static_int8(static_prepared(float_copy(job.parent.model), batches[0]), batches)
    tensors, meta = encode_quantized(model)
    meta["example"] = {
        k: {"shape": [1, *v.shape[1:]], "dtype": str(v.dtype).removeprefix("torch.")} for k, v in batches[0].items()
    }
    notes = {
        "int8_layers": quantized_layers(model),
        "calibration_rows": sum(len(next(iter(b.values()))) for b in batches),
    }
    return Compressed(model, tensors, cfg, meta=meta, train=CPU_FP32, notes=notes)


def _restore_static(
    model: nn.Module, cfg: QuantizeStaticConfig, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> nn.Module:
    example = {k: torch.zeros(v["shape"], dtype=getattr(torch, v["dtype"])) for k, v in meta["example"].items()}
    # observers need one batch before convert; the stored scales replace what they saw
    model = static_int8(static_prepared(merge_adapters(model), example), [example])
    load_quantized(model, tensors, meta)
    return model


STATIC = Method(_apply_static, _restore_static)  # declared in modelworks.compression.methods

# ------------------------------------------------------------------- storing quantized models
# A quantized module's state dict holds quantized tensors, tuples of packed (weight, bias), dtypes,
# and for recurrent layers TorchScript objects. It is flattened into plain tensors plus a JSON
# skeleton that says how to put each entry back together.

_RNN = ".__rnn__."  # recurrent weights are stored through the module's own weight/bias accessors


def quantized_layers(model: nn.Module) -> dict[str, int]:
    """How many int8 layers with weights the model holds, by kind, e.g. {"QuantizedConvReLU2d": 2}."""
    counts: dict[str, int] = {}
    for m in model.modules():
        name = m._get_name()  # e.g. DynamicQuantizedLinear, QuantizedConvReLU2d
        if is_quantized(m) and (callable(getattr(m, "weight", None)) or isinstance(m, QuantizedRNN)):
            counts[name] = counts.get(name, 0) + 1
    return counts


def encode_quantized(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(plain tensors, {"state": skeleton}) for a model with quantized modules."""
    state = dict(model.state_dict())
    for name, m in model.named_modules():
        if isinstance(m, QuantizedRNN):
            prefix = f"{name}." if name else ""
            for key in [k for k in state if k.startswith(prefix + "_all_weight_values.")]:
                del state[key]
            for kind, values in m._weight_bias().items():  # {"weight": {weight_ih_l0: qtensor, ...}, "bias": {...}}
                for k, v in values.items():
                    state[f"{name}{_RNN}{kind}.{k}"] = v
    tensors: dict[str, torch.Tensor] = {}
    skeleton = {key: _encode(key, value, tensors) for key, value in state.items()}
    return tensors, {"state": skeleton}


def load_quantized(model: nn.Module, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Load what `encode_quantized` stored into a model quantized the same way."""
    state = {key: _decode(node, tensors) for key, node in meta["state"].items()}
    for name, m in model.named_modules():
        if isinstance(m, QuantizedRNN):
            marker = f"{name}{_RNN}"
            values = {
                k.removeprefix(marker).split(".", 1)[1]: state.pop(k) for k in list(state) if k.startswith(marker)
            }
            m.set_weight_bias(values)
            prefix = f"{name}." if name else ""
            state.update({k: v for k, v in model.state_dict().items() if k.startswith(prefix + "_all_weight_values.")})
    state = OrderedDict(state)
    state._metadata = getattr(model.state_dict(), "_metadata", None)  # layer versions pick the load format
    model.load_state_dict(state)


def _encode(key: str, value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if value is None:
        return {"none": True}
    if isinstance(value, torch.dtype):
        return {"dtype": str(value).removeprefix("torch.")}
    if isinstance(value, (tuple, list)):
        return {"tuple": [_encode(f"{key}.{i}", v, tensors) for i, v in enumerate(value)]}
    if not isinstance(value, torch.Tensor):
        raise UserError(f"cannot store {key} ({type(value).__name__}) of the quantized model")
    value = value.detach()
    if not value.is_quantized:
        tensors[key] = value
        return {"tensor": key}
    tensors[key] = value.int_repr()  # int8 (qint8) or uint8 (quint8)
    if value.qscheme() == torch.per_tensor_affine:
        return {"qtensor": key, "scale": value.q_scale(), "zero_point": value.q_zero_point()}
    tensors[key + ".__scales__"] = value.q_per_channel_scales()
    tensors[key + ".__zero_points__"] = value.q_per_channel_zero_points()
    return {"qtensor": key, "axis": value.q_per_channel_axis()}


def _decode(node: dict[str, Any], tensors: dict[str, torch.Tensor]) -> Any:
    if "none" in node:
        return None
    if "dtype" in node:
        return getattr(torch, node["dtype"])
    if "tuple" in node:
        return tuple(_decode(n, tensors) for n in node["tuple"])
    if "tensor" in node:
        return tensors[node["tensor"]]
    key = node["qtensor"]
    if "axis" not in node:
        return torch._make_per_tensor_quantized_tensor(tensors[key], node["scale"], node["zero_point"])
    return torch._make_per_channel_quantized_tensor(
        tensors[key], tensors[key + ".__scales__"], tensors[key + ".__zero_points__"], node["axis"]
    )

"""Compressed weights in one safetensors file: plain tensors, sparse ones packed, JSON beside them.

Every compression method hands over a flat ``{name: tensor}`` dict (quantized tensors already
split into integers and scales by `modelworks.compression.quantize`) and a JSON-able ``meta`` dict.
A tensor that is mostly zeros (what pruning leaves) is stored *sparse-aware* as a bitmask of its
non-zero positions (1 bit per element, ``NAME.__mask__``) plus its non-zero values in row-major
order (``NAME.__values__``), whenever that is smaller than the dense tensor. A bitmask costs less
than coordinate indices (4-8 bytes per non-zero) at every sparsity above ~3% density, which
covers the 30-95% sparsities pruning targets, and it works the same for fp32, fp16/bf16 and int8
values. So the size on disk reflects the sparsity; the model in memory is dense again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
from safetensors import safe_open

from modelworks.store.atomic import atomic_write_bytes

MASK, VALUES = ".__mask__", ".__values__"
MIN_PACKED_ELEMENTS = 256  # smaller tensors are not worth the bookkeeping
PACK_BELOW = 0.9  # pack when the packed form is at most this fraction of the dense bytes


def write_weights(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write `tensors` (packing sparse ones) and `meta` to `path` atomically; returns what was packed."""
    out: dict[str, torch.Tensor] = {}
    sparse: dict[str, list[int]] = {}
    seen: set[int] = set()
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        packed = _pack(t)
        if packed is None:
            if t.numel() and t.data_ptr() in seen:  # safetensors refuses shared storage (tied weights)
                t = t.clone()
            seen.add(t.data_ptr())
            out[name] = t
            continue
        out[name + MASK], out[name + VALUES] = packed
        sparse[name] = list(t.shape)
    header = {"meta": json.dumps(meta or {}), "sparse": json.dumps(sparse)}
    atomic_write_bytes(path, safetensors.torch.save(out, metadata=header))
    return {"sparse_tensors": len(sparse), "dense_tensors": len(tensors) - len(sparse)}


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """What `write_weights` wrote: (dense tensors, meta)."""
    with safe_open(str(path), framework="pt") as f:
        header = f.metadata() or {}
        raw = {k: f.get_tensor(k) for k in f.keys()}
    sparse = json.loads(header.get("sparse", "{}"))
    tensors = {k: v for k, v in raw.items() if not k.endswith((MASK, VALUES))}
    for name, shape in sparse.items():
        tensors[name] = _unpack(raw[name + MASK], raw[name + VALUES], shape)
    return tensors, json.loads(header.get("meta", "{}"))


def _pack(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(bitmask uint8, non-zero values), or None when the dense tensor is as small."""
    if t.numel() < MIN_PACKED_ELEMENTS or t.dtype == torch.bool:
        return None
    flat = t.flatten()
    nonzero = flat != 0  # (numel,)
    count = int(nonzero.sum())
    packed_bytes = -(-t.numel() // 8) + count * t.element_size()
    if packed_bytes > PACK_BELOW * t.numel() * t.element_size():
        return None
    mask = torch.from_numpy(np.packbits(nonzero.numpy()))  # (ceil(numel / 8),)
    return mask, flat[nonzero].clone()


def _unpack(mask: torch.Tensor, values: torch.Tensor, shape: list[int]) -> torch.Tensor:
    numel = int(np.prod(shape)) if shape else 1
    nonzero = torch.from_numpy(np.unpackbits(mask.numpy(), count=numel).astype(bool))  # (numel,)
    flat = torch.zeros(numel, dtype=values.dtype)
    flat[nonzero] = values
    return flat.reshape(shape)

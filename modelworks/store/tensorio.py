"""Nested state (dicts, lists, numbers, tensors) in one safetensors file: no pickle anywhere.

Tensors go into the safetensors body; everything else becomes JSON kept in the file's metadata,
with each tensor replaced by a reference. Optimizer and scheduler state dicts, RNG states and
training counters all round-trip through this, so a checkpoint is one file written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from safetensors import safe_open

from modelworks.store.atomic import atomic_write_bytes

_TENSOR = "__tensor__"
_ITEMS = "__items__"  # a dict whose keys are not all strings (e.g. optimizer state: {0: {...}})


def _flatten(obj: Any, tensors: dict[str, torch.Tensor], seen: set[int]) -> Any:
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        t = obj.detach().cpu().contiguous()
        if t.numel() and t.data_ptr() in seen:  # safetensors refuses shared storage: copy it
            t = t.clone()
        if t.numel():
            seen.add(t.data_ptr())
        tensors[key] = t
        return {_TENSOR: key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _flatten(v, tensors, seen) for k, v in obj.items()}
        return {_ITEMS: [[k, _flatten(v, tensors, seen)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [_flatten(v, tensors, seen) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint")


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if _TENSOR in obj:
            return tensors[obj[_TENSOR]]
        if _ITEMS in obj:
            return {k: _unflatten(v, tensors) for k, v in obj[_ITEMS]}
        return {k: _unflatten(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    return obj


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write nested `state` to `path` atomically."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _flatten(state, tensors, set())
    atomic_write_bytes(path, safetensors.torch.save(tensors, metadata={"state": json.dumps(skeleton)}))


def load_state(path: Path) -> dict[str, Any]:
    """Read what `save_state` wrote."""
    with safe_open(str(path), framework="pt") as f:
        skeleton = json.loads(f.metadata()["state"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    return _unflatten(skeleton, tensors)


def save_weights(path: Path, weights: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """A model's state dict as a plain safetensors file (keys = parameter names), atomically."""
    seen: set[int] = set()
    tensors = {}
    for name, t in weights.items():
        t = t.detach().cpu().contiguous()
        if t.numel() and t.data_ptr() in seen:  # tied weights: store each name on its own
            t = t.clone()
        seen.add(t.data_ptr())
        tensors[name] = t
    atomic_write_bytes(path, safetensors.torch.save(tensors, metadata=metadata))


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(str(path))

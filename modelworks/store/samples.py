"""A run's row samples (``replay.safetensors``, ``holdout.safetensors``, kept with ``train.replay``).

A row sample is preprocessed rows (the batch layout of `modelworks.data.schema`, target included)
with a little JSON metadata, in one safetensors file. The rows are private data: the platform seals
them at rest as it does private datasets, through `encode_sample` / `decode_sample` (bytes in,
bytes out), the only code that knows the file's layout; the engine reads and writes them with
`read_sample` / `write_sample`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import safetensors.torch
import torch

from modelworks.errors import UserError
from modelworks.store.atomic import atomic_write_bytes
from modelworks.store.files import HOLDOUT, REPLAY

_META = "modelworks"


@dataclass
class RowSample:
    """Preprocessed rows (each tensor's first dimension is the row) and facts about them (JSON)."""

    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values()))) if self.tensors else 0


def encode_sample(sample: RowSample) -> bytes:
    tensors = {k: v.detach().cpu().contiguous() for k, v in sample.tensors.items()}
    return safetensors.torch.save(tensors, metadata={_META: json.dumps(sample.meta, ensure_ascii=False)})


def decode_sample(raw: bytes, where: str) -> RowSample:
    try:
        tensors = safetensors.torch.load(raw)
        with_meta = json.loads(_header(raw).get("__metadata__", {}).get(_META, "{}"))
    except (ValueError, json.JSONDecodeError, RuntimeError) as e:
        raise UserError(f"{where} is not a row sample written by modelworks: {e}") from e
    return RowSample(tensors, with_meta)


def _header(raw: bytes) -> dict[str, Any]:
    size = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + size])


def write_sample(run_dir: Path, name: str, sample: RowSample) -> None:
    """`sample` as the run's `name` (`files.REPLAY` or `files.HOLDOUT`), atomically."""
    atomic_write_bytes(Path(run_dir) / _known(name), encode_sample(sample))


def read_sample(run_dir: Path, name: str) -> RowSample | None:
    """The run's `name` sample, or None when the run keeps none."""
    path = Path(run_dir) / _known(name)
    return decode_sample(path.read_bytes(), str(path)) if path.exists() else None


def _known(name: str) -> str:
    if name not in (REPLAY, HOLDOUT):
        raise ValueError(f"not a row sample file: {name}")
    return name

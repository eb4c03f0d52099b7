"""In-memory batching by tensor indexing: no per-sample Python calls, no DataLoader workers.

The data order of every epoch is a pure function of (seed, epoch), so a resumed run sees exactly
the batches it would have seen, and every data-parallel rank sees its own disjoint shard.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator

import torch

Decode = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]  # a stored batch -> the model's input


class TensorBatches:
    """A dict of equally long tensors (the batch layout of `modelworks.data.schema`)."""

    def __init__(self, tensors: dict[str, torch.Tensor], decode: Decode | None = None) -> None:
        lengths = {k: len(v) for k, v in tensors.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"tensors of different lengths: {lengths}")
        self.tensors = tensors  # as stored (e.g. uint8 pixels); batches are passed through `decode`
        self.decode = decode
        self.size = next(iter(lengths.values()), 0)

    def decoded(self) -> dict[str, torch.Tensor]:
        """Every row as the model takes it (the stored tensors when there is nothing to decode)."""
        return self.decode(self.tensors) if self.decode is not None else self.tensors

    def to(self, device: torch.device, keys: Collection[str] | None = None) -> TensorBatches:
        """The same rows with the tensors of `keys` (default: all) held on `device`: batches of them are
        then drawn there, without a copy per batch."""
        moved = {k: v.to(device) if keys is None or k in keys else v for k, v in self.tensors.items()}
        return TensorBatches(moved, self.decode)

    def __len__(self) -> int:
        return self.size

    def num_batches(self, batch_size: int, world_size: int = 1) -> int:
        """Batches per epoch for one rank."""
        return math.ceil(math.ceil(self.size / world_size) / batch_size)

    def order(self, shuffle: bool, seed: int, epoch: int, rank: int = 0, world_size: int = 1) -> torch.Tensor:
        """Row indices this rank visits in `epoch`; ranks get equal counts (wrapping, like DistributedSampler)."""
        if shuffle:
            g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
            idx = torch.randperm(self.size, generator=g)
        else:
            idx = torch.arange(self.size)
        if world_size > 1:
            per_rank = math.ceil(self.size / world_size)
            idx = torch.cat([idx, idx[: per_rank * world_size - self.size]])[rank::world_size]
        return idx

    def iterate(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        epoch: int = 0,
        rank: int = 0,
        world_size: int = 1,
        start_batch: int = 0,
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Yield batches in order, skipping the first `start_batch` (for resuming mid-epoch)."""
        order = self.order(shuffle, seed, epoch, rank, world_size)
        idx = {v.device: order.to(v.device) for v in self.tensors.values()}  # tensors may live on several devices
        for start in range(start_batch * batch_size, len(order), batch_size):
            batch = {k: v.index_select(0, idx[v.device][start : start + batch_size]) for k, v in self.tensors.items()}
            yield self.decode(batch) if self.decode is not None else batch

    def subset(self, rows: torch.Tensor) -> TensorBatches:
        return TensorBatches({k: v.index_select(0, rows.to(v.device)) for k, v in self.tensors.items()}, self.decode)

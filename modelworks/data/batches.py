"""In-memory batching by tensor indexing: no per-sample Python calls, no DataLoader workers.

The data order of every epoch is a pure function of (seed, epoch), so a resumed run sees exactly
the batches it would have seen, and every data-parallel rank sees its own disjoint shard.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch


class TensorBatches:
    """A dict of equally long tensors (the batch layout of `modelworks.data.schema`)."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        lengths = {k: len(v) for k, v in tensors.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"tensors of different lengths: {lengths}")
        self.tensors = tensors
        self.size = next(iter(lengths.values()), 0)

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
        idx = self.order(shuffle, seed, epoch, rank, world_size)
        for start in range(start_batch * batch_size, len(idx), batch_size):
            rows = idx[start : start + batch_size]
            yield {k: v.index_select(0, rows) for k, v in self.tensors.items()}

    def subset(self, rows: torch.Tensor) -> TensorBatches:
        return TensorBatches({k: v.index_select(0, rows) for k, v in self.tensors.items()})

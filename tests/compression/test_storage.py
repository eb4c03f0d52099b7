"""Sparse-aware storage: pruned tensors are written as bitmask + values, and read back exactly."""

from __future__ import annotations

import torch

from modelworks.compression.storage import read_weights, write_weights


def test_sparse_tensors_round_trip_and_shrink_the_file(tmp_path):
    g = torch.Generator().manual_seed(0)
    dense = torch.randn(64, 64, generator=g)
    sparse = dense * (torch.rand(64, 64, generator=g) > 0.8)  # 80% zeros
    int8 = (sparse * 20).to(torch.int8)
    tensors = {
        "dense": dense,
        "sparse": sparse,
        "half": sparse.to(torch.bfloat16),
        "int8": int8,
        "small": torch.zeros(3),
    }
    info = write_weights(tmp_path / "w.safetensors", tensors, {"note": [1, 2]})
    back, meta = read_weights(tmp_path / "w.safetensors")
    assert meta == {"note": [1, 2]} and info == {"sparse_tensors": 3, "dense_tensors": 2}
    for name, t in tensors.items():
        assert back[name].dtype == t.dtype and torch.equal(back[name], t), name

    write_weights(tmp_path / "dense.safetensors", {"w": sparse.clone().fill_(1.0)})
    write_weights(tmp_path / "sparse.safetensors", {"w": sparse})
    # 20% of the values (4 bytes each) plus one bit per element, against 4 bytes per element
    ratio = (tmp_path / "sparse.safetensors").stat().st_size / (tmp_path / "dense.safetensors").stat().st_size
    assert 0.2 < ratio < 0.3


def test_tied_weights_are_stored_once_each(tmp_path):
    w = torch.randn(4, 4)
    write_weights(tmp_path / "t.safetensors", {"a": w, "b": w})
    back, _ = read_weights(tmp_path / "t.safetensors")
    assert torch.equal(back["a"], back["b"])

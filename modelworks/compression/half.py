"""Half precision: the weights stored as fp16 or bf16, half the bytes of fp32.

With ``compute: half`` the model also runs in that dtype (its float inputs cast on the way in,
its outputs cast back to fp32). bf16 has fast kernels on current x86 CPUs; fp16 runs on the CPU
too but mostly through slow reference kernels unless the CPU has AVX512-FP16, which the latency
figures in compression.json show. ``compute: float32`` keeps the storage saving and runs in fp32
(the weights upcast when loaded). ``auto`` tries a forward pass in the dtype on the CPU and falls
back to float32 if the CPU has no kernel for some layer; the choice is recorded in the options.
"""

from __future__ import annotations

import torch
from torch import nn

from modelworks.compression.measure import sample_batch, test_split
from modelworks.compression.method import Compressed, Job, Method, float_copy
from modelworks.compression.methods import HalfConfig
from modelworks.models.inference import merge_adapters

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class HalfPrecision(nn.Module):
    """Runs `model` (already in `dtype`) on fp32 batches: float inputs cast in, outputs cast back."""

    def __init__(self, model: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.model = model
        self.dtype = dtype

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        batch = {k: v.to(self.dtype) if v.is_floating_point() else v for k, v in batch.items()}
        return self.model(batch).float()  # (batch, out_dim)


def _runs_in(model: nn.Module, dtype: torch.dtype, batch: dict[str, torch.Tensor]) -> bool:
    try:
        with torch.inference_mode():
            HalfPrecision(model, dtype)(batch)
        return True
    except (RuntimeError, NotImplementedError):
        return False


def _apply(job: Job, cfg: HalfConfig) -> Compressed:
    dtype = DTYPES[cfg.dtype]
    model = float_copy(job.parent.model).to(dtype)
    if cfg.compute == "auto":
        probe = sample_batch(test_split(job.splits, job.parent.config), 2)
        cfg = cfg.model_copy(update={"compute": "half" if _runs_in(model, dtype, probe) else "float32"})
    tensors = {k: v.clone() for k, v in model.state_dict().items()}
    runnable = HalfPrecision(model, dtype) if cfg.compute == "half" else model.float()
    return Compressed(
        runnable,
        tensors,
        cfg,
        train={"precision": "fp32"},
        notes={"compute_dtype": cfg.dtype if cfg.compute == "half" else "fp32"},
    )


def _restore(model: nn.Module, cfg: HalfConfig, tensors: dict[str, torch.Tensor], meta: dict) -> nn.Module:
    dtype = DTYPES[cfg.dtype]
    model = merge_adapters(model).to(dtype)
    model.load_state_dict(tensors)
    return HalfPrecision(model, dtype) if cfg.compute == "half" else model.float()


METHOD = Method(_apply, _restore)  # declared in modelworks.compression.methods

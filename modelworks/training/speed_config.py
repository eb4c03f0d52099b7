"""The speed settings of training (``train.speed``), torch-free; they are applied by `training.speed`.

Each setting changes how fast a step runs, never what the model computes (up to float rounding),
so a user can try them on any model. Their measured effects are recorded in the README and in
`examples/fashion_mnist_fast.yaml`. Mixed precision is ``train.precision`` (bf16 also on CPU).
"""

from __future__ import annotations

from pydantic import Field

from modelworks.config.base import Section


class SpeedConfig(Section):
    channels_last: bool = Field(
        False,
        description="hold conv weights and image batches in channels-last (NHWC) memory format: "
        "faster convolutions with oneDNN on CPU and with tensor cores on GPU; no effect on models without convs",
    )
    compile: bool = Field(
        False,
        description="torch.compile the model for training (opt-in): pays only when the run is long enough to "
        "win back the compile time of the first steps",
    )
    threads: int | None = Field(
        None, ge=1, description="intra-op CPU threads (torch.set_num_threads); None: PyTorch's default (the cores)"
    )
    interop_threads: int | None = Field(
        None, ge=1, description="inter-op CPU threads (torch.set_num_interop_threads, once per process); None: default"
    )
    data_on_device: bool = Field(
        False,
        description="move the training and validation tensors onto the device once, before the first epoch: "
        "no host-to-device copy per batch (GPU); the data must fit in device memory",
    )

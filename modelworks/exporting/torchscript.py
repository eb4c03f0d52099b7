"""TorchScript: the model traced with torch.jit.trace and saved as model.pt, checked like ONNX.

Load it with ``torch.jit.load("model.pt")`` in Python or ``torch::jit::load`` in C++ (LibTorch),
then call it with the positional tensors of `modelworks.exporting.interface`. Loading a TorchScript
file runs no pickle of arbitrary Python objects: the archive holds TorchScript code and tensors,
which only TorchScript's own loader reads. Still, load only files you trust, as with any program.

Tracing records the tensor operations of one forward pass; values computed in Python (``.item()``,
NumPy) are frozen into the graph, which the check on the whole test split, at another batch size
than the traced one, catches and attributes to the layer the tracer warned about.
"""

from __future__ import annotations

import torch

from modelworks.exporting.check import verify
from modelworks.exporting.formats import ExportJob
from modelworks.exporting.guard import tracing, unexportable
from modelworks.store.export import FormatRecord
from modelworks.store.files import TORCHSCRIPT_MODEL as MODEL_FILE


def export_torchscript(job: ExportJob) -> FormatRecord:  # declared in modelworks.exporting.formats
    """Write model.pt, reload it, check it, and return its export.json fields."""
    path = job.folder / MODEL_FILE
    with tracing(job.model) as tracker:
        try:
            with torch.no_grad():
                traced = torch.jit.trace(job.model, job.example, check_trace=False)  # checked below, on real rows
            torch.jit.save(traced, str(path))
        except Exception as e:  # noqa: BLE001 - any tracer failure becomes one UserError naming the layer
            raise unexportable("TorchScript", e, tracker, job.example) from e
        loaded = torch.jit.load(str(path), map_location="cpu").eval()

        def runner(inputs: list[torch.Tensor]):
            with torch.no_grad():
                return loaded(*inputs).numpy()

        check = verify("TorchScript", runner, job, tracker)
    return FormatRecord(
        file=MODEL_FILE,
        size_bytes=path.stat().st_size,
        exporter="torch.jit.trace",
        load="torch.jit.load (TorchScript code and tensors; no pickle of arbitrary Python objects)",
        check=check,
        warnings=tracker.warning_records(),
    )

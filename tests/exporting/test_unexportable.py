"""A layer the exporters cannot express fails the export with a UserError that names the layer,
and nothing is published."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from modelworks.engine.run import Run
from modelworks.errors import UserError
from modelworks.exporting.export import export_run


class Digamma(nn.Module):
    """An operator with no ONNX form."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.special.digamma(x.abs() + 1)


class NumpyTanhFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.tanh(x.detach().numpy()))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad


class NumpyFunctionTanh(nn.Module):
    """A Python-side operation wrapped in an autograd Function: the exporter refuses it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return NumpyTanhFunction.apply(x)


class NumpyTanh(nn.Module):
    """A Python-side operation inline: the tracer freezes its result into the graph."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.tanh(x.detach().numpy()))


def with_layer(run: Run, layer: nn.Module) -> Run:
    """The run with the activation of its head's first dense layer replaced by `layer`."""
    model = copy.deepcopy(run.model)
    model.head.layers[1] = layer
    return Run(run.path, run.config, run.preprocessor, model, run.device)


class LooseWeight(nn.Module):
    """A weight kept as a plain tensor attribute instead of a Parameter: tracing refuses it."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.ones(16, requires_grad=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def test_an_operator_without_onnx_form_names_the_layer(trained, tmp_path) -> None:
    run = with_layer(trained["mlp-iris"], Digamma())
    with pytest.raises(
        UserError, match=r"cannot export this model to ONNX: layer 'head.layers.1' \(Digamma\) .*aten::digamma"
    ):
        export_run(run, "onnx", output=tmp_path / "onnx")
    assert not list(tmp_path.iterdir())  # nothing published, no staging folder left behind


@pytest.mark.parametrize("format_,kind", [("onnx", "ONNX"), ("torchscript", "TorchScript")])
def test_a_tracing_failure_names_the_layer(trained, tmp_path, format_: str, kind: str) -> None:
    run = with_layer(trained["mlp-iris"], LooseWeight())
    with pytest.raises(UserError, match=rf"cannot export this model to {kind}: layer 'head.layers.1' \(LooseWeight\)"):
        export_run(run, format_, output=tmp_path / format_)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("format_", ["onnx", "torchscript"])
def test_frozen_python_values_fail_the_check_and_name_the_layer(trained, tmp_path, format_: str) -> None:
    run = with_layer(trained["mlp-iris"], NumpyTanh())
    pattern = r"test split.*values leave the tensor graph in layer 'head.layers.1' \(NumpyTanh\): .*NumPy"
    with pytest.raises(UserError, match=pattern):
        export_run(run, format_, output=tmp_path / format_)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("format_", ["onnx", "torchscript"])
def test_a_python_function_names_the_layer(trained, tmp_path, format_: str) -> None:
    """ONNX traces through it and the check catches the frozen values; TorchScript refuses to save it."""
    run = with_layer(trained["mlp-iris"], NumpyFunctionTanh())
    with pytest.raises(UserError, match=r"layer 'head.layers.1' \(NumpyFunctionTanh\)"):
        export_run(run, format_, output=tmp_path / format_)
    assert not list(tmp_path.iterdir())


def test_a_failed_export_keeps_the_previous_one(trained, tmp_path) -> None:
    run = trained["mlp-iris"]
    good = export_run(run, "onnx", output=tmp_path / "onnx")
    before = {p.name: p.read_bytes() for p in good.folder.iterdir()}
    with pytest.raises(UserError):
        export_run(with_layer(run, Digamma()), "onnx", output=tmp_path / "onnx")
    assert {p.name: p.read_bytes() for p in good.folder.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx"]

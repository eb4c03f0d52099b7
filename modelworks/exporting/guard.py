"""Tracing a model for export, and naming the layer an exporter cannot handle.

Exporters fail in one of two places. While tracing, the exception is raised inside some layer's
forward: forward hooks keep the stack of layers that are running, and the innermost one is the
culprit. After tracing (the ONNX conversion), the error either shows where the operation was
defined (a Python stack, matched against the layers' forward methods) or only names the operator
(``aten::fft_rfft``), and a trace of the model finds the layer whose forward called it.

A layer that computes on Python values (``.item()``, ``.tolist()``, NumPy) does not fail to
trace; the tracer warns and freezes the values it saw into the graph. Every warning is recorded
with the layer that was running, so that when the exported model then disagrees with PyTorch the
error can say which layer left the graph.
"""

from __future__ import annotations

import inspect
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

from modelworks.errors import UserError

_TOOLING = {"DeprecationWarning", "PendingDeprecationWarning", "FutureWarning"}  # about the tools, not the model


class LayerTracker:
    """Which of `root`'s layers are running (a stack kept by forward hooks, in the thread that
    exports) and what the tracer warned about."""

    def __init__(self, root: nn.Module) -> None:
        self.root = root
        self.names = {module: name for name, module in root.named_modules()}
        self.stack: list[nn.Module] = []
        self.thread = threading.get_ident()
        self.warnings: dict[tuple[str, str, str, str, int], int] = {}  # (layer, category, message, file, line) -> count

    def running(self) -> str | None:
        """The qualified name of the innermost layer still running (after an exception: the culprit)."""
        return self.names[self.stack[-1]] if self.stack else None

    def _enter(self, module: nn.Module, args: Any) -> None:
        if module in self.names and threading.get_ident() == self.thread:
            self.stack.append(module)

    def _leave(self, module: nn.Module, args: Any, output: Any) -> None:
        if module in self.names and threading.get_ident() == self.thread:
            while self.stack:  # a child that raised inside a try/except of its parent left itself behind
                if self.stack.pop() is module:
                    break

    def _warn(self, message, category, filename, lineno, file=None, line=None) -> None:
        text = str(message).strip().splitlines()[0].split(". ")[0][:300]  # the first sentence says it
        key = (self.running() or "", category.__name__, text, str(Path(filename).resolve()), lineno)
        self.warnings[key] = self.warnings.get(key, 0) + 1

    def warning_records(self) -> list[dict[str, Any]]:
        """The warnings about the model, one record per distinct (layer, message), for export.json.

        Deprecation notices of the export tools themselves are left out.
        """
        return [
            {
                "layer": layer or None,
                "category": category,
                "message": message,
                "where": f"{Path(file).name}:{line}",
                "count": count,
            }
            for (layer, category, message, file, line), count in self.warnings.items()
            if category not in _TOOLING
        ]


@contextmanager
def tracing(root: nn.Module) -> Iterator[LayerTracker]:
    """Export mode for `root`: eval, plain (exportable) attention, hooks and warnings recorded.

    PyTorch's fused attention fast path (a single native op with no ONNX form) is switched off;
    every warning raised meanwhile goes to the tracker instead of the console.
    """
    tracker = LayerTracker(root)
    # Global hooks, not hooks on the modules: the tracer would try to compile those into the model.
    handles = [register_module_forward_pre_hook(tracker._enter), register_module_forward_hook(tracker._leave)]
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    root.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = tracker._warn
            yield tracker
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        for handle in handles:
            handle.remove()


# ----------------------------------------------------------------------------------- culprits


def describe_layer(root: nn.Module, name: str) -> str:
    """``'head.layers.1' (NumpyTanh)``; names inside the positional wrapper lose its ``model.``."""
    module = root.get_submodule(name) if name else root
    shown = name.removeprefix("model.") if name != "model" else "(the whole model)"
    return f"{shown!r} ({type(module).__name__})"


def operator_layer(root: nn.Module, example: tuple[torch.Tensor, ...], message: str) -> str | None:
    """The layer that calls the operator an error message names, found in a trace of `root`."""
    try:
        with tracing(root), torch.no_grad():
            graph = torch.jit.trace(root, example, check_trace=False).inlined_graph
    except Exception:  # noqa: BLE001 - best effort: the caller still reports the exporter's message
        return None
    named = set(re.findall(r"\b(\w+::\w+)", message))  # "aten::digamma", "quantized::linear_dynamic"
    if not named:  # some messages name the operator bare: "embedding_bag with padding_idx"
        named = {f"aten::{word}" for word in re.findall(r"\b[a-z]+_\w+\b", message)}

    def matches(kind: str) -> bool:  # the exporter may name a canonical form: special_digamma -> digamma
        space, op = kind.split("::", 1)
        return any(kind == n or (n.startswith(space + "::") and op.endswith("_" + n.split("::", 1)[1])) for n in named)

    for node in graph.nodes():
        if "::" in node.kind() and node.scopeName() and matches(node.kind()):
            return node.scopeName().split("/")[-1].removeprefix("__module.")  # "__module.model.head.layers.1"
    return None


_FRAME = re.compile(r"^\s*(.+)\((\d+)\): \S+\s*$")  # "file.py(39): forward", as exporters print stacks


def stack_layer(root: nn.Module, text: str) -> str | None:
    """The layer whose forward appears first in a Python stack printed in an exporter's error `text`."""
    frames = [m.groups() for m in map(_FRAME.match, text.splitlines()) if m]  # innermost first
    spans = []  # (file, first line, last line, layer) of each layer class's forward
    for name, module in root.named_modules():
        try:
            lines, first = inspect.getsourcelines(type(module).forward)
            file = str(Path(inspect.getsourcefile(type(module).forward) or "").resolve())
        except (OSError, TypeError):
            continue
        spans.append((file, first, first + len(lines) - 1, name))
    for file, line in frames:
        path = str(Path(file.strip()).resolve())
        for span_file, first, last, name in spans:
            if span_file == path and first <= int(line) <= last:
                return name
    return None


def unexportable(
    kind: str, error: BaseException, tracker: LayerTracker, example: tuple[torch.Tensor, ...]
) -> UserError:
    """A UserError for an exporter's failure that names the layer it failed in, when one is found."""
    raw = str(error)
    lines = [line.strip() for line in raw.splitlines() if line.strip() and not _FRAME.match(line)]
    message = (lines[0][:400].rstrip(":") if lines else "") or type(error).__name__  # the first line says it
    layer = tracker.running() or stack_layer(tracker.root, raw) or operator_layer(tracker.root, example, message)
    if layer is None:
        return UserError(f"cannot export this model to {kind}: {message}")
    return UserError(
        f"cannot export this model to {kind}: layer {describe_layer(tracker.root, layer)} does something the "
        f"exporter cannot express: {message}. Rewrite that layer with tensor operations the exporter supports"
    )


def python_side_layers(tracker: LayerTracker) -> str:
    """The layers the tracer warned about, for a failed check's message ('' when none).

    Warnings raised by a layer's own code (the file its class is defined in) come first: library
    code such as attention warns about shapes on every trace, and is rarely the cause.
    """
    found: dict[str, tuple[str, str, int]] = {}  # layer -> its first warning
    for layer, category, message, file, line in tracker.warnings:
        if layer and category == "TracerWarning":
            found.setdefault(layer, (message, file, line))
    own = {layer: w for layer, w in found.items() if w[1] == _source_file(tracker.root.get_submodule(layer))}
    shown = [
        f"layer {describe_layer(tracker.root, layer)}: {message} ({Path(file).name}:{line})"
        for layer, (message, file, line) in list((own or found).items())[:3]
    ]
    return "; the tracer saw values leave the tensor graph in " + "; ".join(shown) if shown else ""


def _source_file(module: nn.Module) -> str | None:
    try:
        return str(Path(inspect.getsourcefile(type(module)) or "").resolve())
    except TypeError:  # a built-in class
        return None

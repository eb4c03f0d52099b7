"""The exported model's tensor interface: positional inputs in a fixed order, one raw output.

An exported model takes the batch layout of `modelworks.data.schema` as positional tensors, in
this order (a kind the data does not have is left out, and the numbering closes up):

=====  =================  ============================  ==============================================
order  name               shape / dtype                 holds
=====  =================  ============================  ==============================================
1      ``numeric``        (batch, n_numeric) float32    numeric columns, filled and scaled
2      ``categorical``    (batch, n_categorical) int64  category index per column (0 = unknown)
3...   ``text.<name>``    (batch, seq) int64            token ids, right-padded; seq <= max_length
...    ``image.<name>``   (batch, C, H, W) float32      pixels in [0, 1], normalized per channel
=====  =================  ============================  ==============================================

Text features come in schema order, then image features in schema order. The one output,
``outputs`` (batch, out_dim) float32, holds the raw outputs: logits for classification (softmax
for multiclass, sigmoid of the single logit for binary) and values for regression.

`describe_inputs` writes the same interface as JSON, with the steps that turn raw column values
into each tensor, so that a client in any language can rebuild the inputs from preprocess.json.
"""

from __future__ import annotations

import json
from typing import Any

import torch
from torch import nn

from modelworks.config.schema import CategoricalFeature, ExperimentConfig, NumericFeature
from modelworks.data.schema import CATEGORICAL, NUMERIC, InputSchema, image_key, text_key
from modelworks.store.export import ExportRecord, InputsDescription

OUTPUT = "outputs"


def input_names(schema: InputSchema) -> list[str]:
    """The exported model's input names, in positional order (see the module docstring)."""
    names = [NUMERIC] if schema.numeric else []
    names += [CATEGORICAL] if schema.categorical else []
    names += [text_key(name) for name in schema.text]
    names += [image_key(name) for name in schema.image]
    return names


def sequence_axis(schema: InputSchema, feature: str) -> str:
    """The name of a text input's length axis: ``seq``, or ``seq.<feature>`` when there are several."""
    return "seq" if len(schema.text) == 1 else f"seq.{feature}"


def dynamic_axes(schema: InputSchema, free_sequence: bool = True) -> dict[str, dict[int, str]]:
    """Axes left free in the exported graph: the batch everywhere, and (unless told not to) the
    length of each text."""
    axes: dict[str, dict[int, str]] = {name: {0: "batch"} for name in input_names(schema)}
    if free_sequence:
        for feature in schema.text:
            axes[text_key(feature)][1] = sequence_axis(schema, feature)
    axes[OUTPUT] = {0: "batch"}
    return axes


class PositionalModel(nn.Module):
    """A model that takes the batch dict, called with positional tensors in `names` order."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.names = list(names)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(dict(zip(self.names, inputs, strict=False)))  # (batch, out_dim)


# ------------------------------------------------------------------------------- description


def describe_inputs(
    config: ExperimentConfig, schema: InputSchema, state: dict[str, Any], free_sequence: bool = True
) -> dict[str, Any]:
    """The interface as JSON: every input (name, dtype, shape, how to build it) and the output.

    `state` is the fitted preprocessing state (``preprocess.json`` → ``state``); long values
    (vocabularies, tokenizers) are referred to by their path in it. `free_sequence` says whether
    texts may be shorter than max_length (the export's check found out).
    """
    features = {f.name: f for f in config.data.features}
    fitted = state["features"]
    inputs: list[dict[str, Any]] = []
    if schema.numeric:
        inputs.append(
            {
                "name": NUMERIC,
                "dtype": "float32",
                "shape": ["batch", len(schema.numeric)],
                "columns": [_numeric_column(features[c], fitted[c]) for c in schema.numeric],
                "build": "one value per column, in this order: a missing value becomes `fill` (null: the row "
                "cannot be scored), then (value - center) / scale",
            }
        )
    if schema.categorical:
        inputs.append(
            {
                "name": CATEGORICAL,
                "dtype": "int64",
                "shape": ["batch", len(schema.categorical)],
                "columns": [_categorical_column(features[c], fitted[c]) for c in schema.categorical],
                "build": "one index per column, in this order: the value as a string (a float with an integer "
                'value loses its decimals: 3.0 -> "3"), a missing value becomes `fill`, then its '
                "position in state.features.<column>.vocabulary plus 1; a value not in the vocabulary is 0",
            }
        )
    for name, spec in schema.text.items():
        inputs.append(
            {
                "name": text_key(name),
                "dtype": "int64",
                "shape": ["batch", sequence_axis(schema, name) if free_sequence else spec.max_length],
                "column": name,
                "max_length": spec.max_length,
                "pad_id": spec.pad_id,
                "vocab_size": spec.vocab_size,
                "fill": fitted[name]["fill"],
                "tokenizer": f"state.features.{name}.tokenizer",
                "cjk_ngrams": (ngrams := fitted[name].get("cjk_ngrams", 1)),
                "build": "a missing text becomes `fill`; "
                + (
                    f"write every run of CJK characters as its characters, each followed by the character n-grams "
                    f'of up to {ngrams} characters starting at it, all separated by spaces ("足球" -> '
                    f'" 足 足球 球 "; modelworks.data.text.cjk_ngrams); '
                    if ngrams > 1
                    else ""
                )
                + "encode it with the tokenizer (a Hugging Face `tokenizers` "
                "JSON, loadable from Python, Rust, Node.js; it truncates and right-pads to max_length with "
                "pad_id)"
                + (
                    "; seq may be shorter than max_length (padding trimmed) but never longer"
                    if free_sequence
                    else "; the model needs exactly max_length ids"
                ),
            }
        )
    for name, (channels, height, width) in schema.image.items():
        inputs.append(
            {
                "name": image_key(name),
                "dtype": "float32",
                "shape": ["batch", channels, height, width],
                "column": name,
                "mode": "L" if channels == 1 else "RGB",
                "size": [height, width],
                "mean": fitted[name]["mean"],
                "std": fitted[name]["std"],
                "build": "decode the image, convert to `mode` (grayscale L or RGB), resize to `size` (height, width) "
                "with bilinear filtering unless it already has that size, divide the 0-255 pixels by 255, "
                "then per channel subtract `mean` and divide by `std`; layout channels-first (C, H, W)",
            }
        )
    return {
        "inputs": inputs,
        "output": _output(config, schema),
        "preprocess": "preprocess.json (state: the fitted preprocessing; schema: the model's input schema)",
    }


def _numeric_column(feature: NumericFeature, state: dict[str, Any]) -> dict[str, Any]:
    return {"column": feature.name, "fill": state["fill"], "center": state["center"], "scale": state["scale"]}


def _categorical_column(feature: CategoricalFeature, state: dict[str, Any]) -> dict[str, Any]:
    return {
        "column": feature.name,
        "fill": state["fill"],
        "vocabulary": f"state.features.{feature.name}.vocabulary",
        "size": len(state["vocabulary"]) + 1,
    }


def _output(config: ExperimentConfig, schema: InputSchema) -> dict[str, Any]:
    read = {
        "multiclass": "logits, one per class: softmax gives the probabilities; the class is class_names[argmax]",
        "binary": "one logit: sigmoid gives P(class_names[1]); predict class_names[1] when it is >= threshold",
        "regression": "the predicted value",
    }[schema.task]
    output = {
        "name": OUTPUT,
        "dtype": "float32",
        "shape": ["batch", schema.out_dim],
        "task": schema.task,
        "read": read,
        "class_names": schema.class_names,
    }
    if schema.task == "binary":
        output["threshold"] = config.evaluate.threshold
    return output


def readme(title: str, description: InputsDescription, record: ExportRecord) -> str:
    """A short Markdown README for the export folder, rendered from inputs.json and export.json."""
    lines = [
        f"# {title}",
        "",
        f"Exported by modelworks as {record.format}: `{record.file}`.",
        "",
        "## Inputs (positional, in this order)",
        "",
        "| # | name | dtype | shape | how to build it |",
        "|---|---|---|---|---|",
    ]
    for i, spec in enumerate(description.inputs, start=1):
        shape = "(" + ", ".join(map(str, spec.shape)) + ")"
        lines.append(f"| {i} | `{spec.name}` | {spec.dtype} | {shape} | {spec.build} |")
    lines += ["", "Numbers (`state.…` paths are in preprocess.json):", ""]
    for spec in description.inputs:
        lines += [f"- `{spec.name}`: {_numbers(spec.model_dump())}"]
    out = description.output
    lines += ["", "## Output", "", f"`{out.name}` {out.dtype} ({', '.join(map(str, out.shape))}): {out.read}."]
    if out.class_names:
        lines += ["", "class_names: " + ", ".join(f"`{c}`" for c in out.class_names)]
    check = record.check
    lines += [
        "",
        "## Files",
        "",
        "- `preprocess.json`: the fitted preprocessing (scaling, vocabularies, tokenizer JSON, image statistics)",
        "- `config.yaml`: the run's resolved config (features, target, decision threshold)",
        "- `inputs.json`: this interface as JSON, with the per-column numbers",
        "- `export.json`: how the export was made and checked, library versions, every other file's SHA-256",
        "",
        "`modelworks serve THIS_FOLDER` serves it (ONNX Runtime) wherever it is copied; no run folder is needed.",
        "",
        "## Check",
        "",
        f"Outputs compared with PyTorch on the {check.split} split ({check.rows} rows, batches of "
        f"{check.batch_size}): max abs difference {check.max_abs_diff:.2e} (tolerance {check.tolerance:g}).",
    ]
    if check.free_sequence is not None:
        trimmed = check.trimmed_max_abs_diff
        lines += [
            "",
            f"Texts cut to each batch's longest: max abs difference {trimmed:.2e}, so seq is free."
            if check.free_sequence
            else "Texts cut shorter than max_length did not match: seq is fixed at max_length.",
        ]
    if record.quantized is not None:
        q = record.quantized
        change = f"{100 * q.change:+.2f} points" if q.metric == "accuracy" else f"{q.change:+.4g}"
        lines += [
            "",
            f"`{q.file}` ({q.size_bytes:,} bytes against {q.float_size_bytes:,}): {q.metric} "
            f"{q.float_value:.4f} -> {q.quantized:.4f} on the same rows ({change}).",
        ]
    return "\n".join(lines) + "\n"


def _numbers(spec: dict[str, Any]) -> str:
    """One input's numbers as text: ``length (fill 27.4, center 27.4, scale 14.1)``."""
    if "columns" in spec:
        keys = [k for k in spec["columns"][0] if k != "column"]
        return "; ".join(
            f"{c['column']} (" + ", ".join(f"{k} {_value(c[k])}" for k in keys) + ")" for c in spec["columns"]
        )
    keys = [k for k in spec if k not in ("name", "dtype", "shape", "build")]
    return ", ".join(f"{k} {_value(spec[k])}" for k in keys)


def _value(value: Any) -> str:
    return (
        json.dumps(value, ensure_ascii=False)
        if isinstance(value, str) and not value.startswith("state.")
        else str(value)
    )

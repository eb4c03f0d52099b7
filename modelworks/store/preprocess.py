"""``preprocess.json``'s envelope: the fitted preprocessing state and the model's input schema.

What is inside each part belongs to `modelworks.data.preprocess` (`Preprocessor.state_dict`,
`InputSchema.to_json`); this module only declares the file and reads and writes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from modelworks.store.files import PREPROCESS
from modelworks.store.jsonfile import Stored, read_model, write_model


class PreprocessRecord(Stored):
    """``{"state": <fitted preprocessing>, "schema": <input schema>}``."""

    state: dict[str, Any] = Field(description="Preprocessor.state_dict(): scalers, vocabularies, tokenizers")
    input_schema: dict[str, Any] = Field(alias="schema", description="InputSchema.to_json(): the model's inputs")


def read_preprocess(folder: Path) -> PreprocessRecord:
    return read_model(Path(folder) / PREPROCESS, PreprocessRecord)


def write_preprocess(folder: Path, record: PreprocessRecord) -> None:
    write_model(Path(folder) / PREPROCESS, record)

"""``builtin:NAME``: a data set that ships with a library or a Debian package; see `modelworks.data.builtins`."""

from __future__ import annotations

from modelworks.config.schema import DataConfig
from modelworks.data.builtins import load_builtin
from modelworks.data.sources import LoadedData


def read_builtin(location: str, cfg: DataConfig) -> LoadedData:
    return load_builtin(location)

"""Places on the server's disk out of what the API sends.

A job's run folder, a message from the engine about a file it read, a log line that names where
a run was saved: all are written with absolute paths, which tell a caller how the server is laid
out. `redact` rewrites them before they leave: a path inside the jobs' work folder becomes
relative to it (``12/jobs/5/run``, the same name the artifact store uses), and any other mention
of the data folder becomes ``$MODELWORKS_HOME``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from modelworks.platform.settings import Settings

T = TypeVar("T")
HOME = "$MODELWORKS_HOME"


@lru_cache(maxsize=8)
def _replacements(settings: Settings) -> tuple[tuple[str, str], ...]:
    """(prefix, replacement) pairs, longest prefix first, for the given and the resolved paths."""
    pairs: dict[str, str] = {}
    for root, replacement in ((settings.work_dir, ""), (settings.home, HOME)):
        for path in {Path(root).absolute(), Path(root).resolve()}:
            pairs.setdefault(f"{path}/", f"{replacement}/" if replacement else "")
            pairs.setdefault(str(path), replacement or ".")
    return tuple(sorted(pairs.items(), key=lambda kv: len(kv[0]), reverse=True))


def redact(value: T, settings: Settings) -> T:
    """``value`` (a string, or JSON-like data holding strings) with server paths rewritten."""
    if isinstance(value, str):
        for prefix, replacement in _replacements(settings):
            if prefix in value:
                value = value.replace(prefix, replacement)
        return value  # type: ignore[return-value]
    if isinstance(value, dict):
        return {k: redact(v, settings) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [redact(v, settings) for v in value]  # type: ignore[return-value]
    return value

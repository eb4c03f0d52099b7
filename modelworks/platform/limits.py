"""Bounds on a job's config, checked before anything reads it.

Validating a config costs time per key, and a stored config is sent back in every job listing:
a config with a million keys, a 10 MB string or a thousand levels of nesting must be refused
before it is validated, stored or echoed. The limits are settings (``max_config_kb``,
``max_config_depth``); the request body as a whole is bounded earlier, by the server's
`modelworks.server.middleware.BodyLimits`.
"""

from __future__ import annotations

import json
from typing import Any

from modelworks.platform.errors import TooLarge, Unprocessable
from modelworks.platform.settings import Settings


def depth(value: Any, stop: int) -> int:
    """How deeply ``value`` nests (a scalar is 0, ``{}`` is 1); counting stops past ``stop``."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if deepest > stop:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def check_config(config: Any, settings: Settings, what: str = "config") -> None:
    """Refuse a config deeper than ``max_config_depth`` (422) or larger than ``max_config_kb``
    once serialized as JSON (413); each message names the limit and its setting."""
    if depth(config, settings.max_config_depth) > settings.max_config_depth:
        limit = settings.max_config_depth
        raise Unprocessable(f"{what} nests deeper than {limit} levels (MODELWORKS_MAX_CONFIG_DEPTH)")
    size = len(json.dumps(config, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > settings.max_config_kb * 1024:
        raise TooLarge(
            f"{what} is {size / 1024:.0f} KB as JSON; the limit is {settings.max_config_kb:g} KB "
            f"(MODELWORKS_MAX_CONFIG_KB)"
        )

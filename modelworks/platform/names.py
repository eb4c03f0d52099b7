"""The one rule for user and project names: they appear in URLs, and later in folder names."""

from __future__ import annotations

import re

from modelworks.errors import UserError

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
NAME_RULE = "1 to 64 characters: lowercase letters, digits, '-', '_' or '.', starting with a letter or digit"
_NAME = re.compile(NAME_PATTERN)


def is_valid_name(name: str) -> bool:
    return bool(_NAME.fullmatch(name))


def check_name(kind: str, name: str) -> str:
    """Return ``name`` if it follows the rule, else raise a UserError saying the rule."""
    if not is_valid_name(name):
        raise UserError(f"invalid {kind} name {name!r}: use {NAME_RULE}")
    return name

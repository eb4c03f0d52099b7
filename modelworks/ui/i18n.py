"""Message catalogs for the web UI: English and Simplified Chinese.

Templates write English text through ``_("...")`` (format fields by name: ``_("{n} rows", n=3)``);
the English text is the message's key. ``locales/zh-CN.json`` maps each key to its Chinese; a key
missing from a catalog shows the English (a test checks that every key the templates use is in
every catalog). The language is the ``mw_lang`` cookie (set by the switch in the page header), else
the best match in the browser's ``Accept-Language``, else English.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources

LANGUAGES = {"en": "English", "zh-CN": "中文"}
DEFAULT = "en"
LANG_COOKIE = "mw_lang"


@cache
def catalog(lang: str) -> dict[str, str]:
    """The messages of ``lang`` (English: the keys themselves, so an empty catalog)."""
    if lang == DEFAULT:
        return {}
    folder = resources.files("modelworks.ui").joinpath("locales")
    messages: dict[str, str] = {}
    for part in sorted(p.name for p in folder.iterdir() if p.name.startswith(f"{lang}.") and p.name.endswith(".json")):
        messages.update(json.loads(folder.joinpath(part).read_text(encoding="utf-8")))  # zh-CN.json, zh-CN.runs.json
    return messages


def translator(lang: str) -> Callable[..., str]:
    """``_(message, **fields)`` for ``lang``."""
    messages = catalog(lang)

    def translate(message: str, **fields: object) -> str:
        text = messages.get(message, message)
        return text.format(**fields) if fields else text

    return translate


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """The page language: the cookie's choice, else the browser's preference, else English."""
    if cookie in LANGUAGES:
        return cookie
    choices = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        choices.append((-q, i, tag.strip().lower()))
    for _q, _i, tag in sorted(choices):
        if tag.startswith("zh"):  # the only Chinese catalog is Simplified: closer than English for any reader
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT

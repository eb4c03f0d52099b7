"""The message catalogs: every string a template passes through ``_()`` has its Chinese, and so
does every value a template translates (job states and kinds, roles, audit actions); the language
comes from the cookie, else the browser. No browser needed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from modelworks.job_kinds import JOB_KINDS
from modelworks.platform.db.models import JOB_STATES
from modelworks.platform.roles import Role
from modelworks.ui import i18n

UI = Path(i18n.__file__).parent
LITERAL = re.compile(r"""_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")
TRANSLATED_VALUES = [*JOB_STATES, *(e.name for e in JOB_KINDS), *(r.value for r in Role), "admin"]
TRANSLATED_VALUES += ["model.version.create", "model.alias.set", "model.alias.delete"]
TRANSLATED_VALUES += ["promoted", "rejected", "tested", "failed"]  # a continual window's outcome


def template_keys() -> set[str]:
    keys = set()
    for path in UI.rglob("templates/**/*.html"):
        keys |= {a or b for a, b in LITERAL.findall(path.read_text(encoding="utf-8"))}
    return keys


@pytest.mark.parametrize("lang", [lang for lang in i18n.LANGUAGES if lang != i18n.DEFAULT])
def test_every_message_has_a_translation(lang):
    catalog = i18n.catalog(lang)
    keys = template_keys()
    assert len(keys) > 100  # the scan found the templates' strings
    missing = sorted((keys | set(TRANSLATED_VALUES)) - set(catalog))
    assert not missing, f"{lang} lacks: {missing}"
    for key, text in catalog.items():  # a translation keeps the fields its message formats
        assert set(re.findall(r"\{(\w+)\}", key)) == set(re.findall(r"\{(\w+)\}", text)), key


def test_the_catalog_is_utf8_json_with_chinese():
    raw = (UI / "locales" / "zh-CN.json").read_text(encoding="utf-8")
    assert json.loads(raw)["Datasets"] == "数据集" and "\\u" not in raw


def test_the_language_is_the_cookie_then_the_browser():
    assert i18n.negotiate(None, "zh-CN,zh;q=0.9,en;q=0.8") == "zh-CN"
    assert i18n.negotiate(None, "en-US,en;q=0.9,zh;q=0.8") == "en"
    assert i18n.negotiate(None, "fr;q=0.9, zh-TW;q=0.5") == "zh-CN"
    assert i18n.negotiate("en", "zh-CN") == "en" and i18n.negotiate("zh-CN", "en") == "zh-CN"
    assert i18n.negotiate("xx", None) == "en"
    assert i18n.translator("zh-CN")("{n} jobs", n=3) == "3 个作业"

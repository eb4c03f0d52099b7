"""Where a config problem is in the YAML the user typed: a key path (``train.lr``,
``data.features.0.name``) mapped to the line it is on, or the nearest line of the path that exists
(an unknown key is on its own line; a missing one is reported at its parent's)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

# "  data.split.validation: Input should be ..." (one problem of several) or "config: train.lr must ..." (one)
PROBLEM_LINE = re.compile(r"^\s+(?P<path>[A-Za-z_][\w.\[\]-]*): (?P<message>.+)$")
SINGLE = re.compile(r"^(?:config: )?(?P<path>[a-z_][\w]*(?:\.[\w\[\]-]+)+)[: ](?P<message>.*)$")


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    line: int | None  # 1-based; None when the text has no line for it


def parse_problems(error: str) -> list[tuple[str, str]]:
    """(key path, message) pairs from a config error's message ('' path when it names none)."""
    lines = error.splitlines()
    found = [(m["path"], m["message"]) for m in map(PROBLEM_LINE.match, lines[1:]) if m]
    if found:
        return found
    single = SINGLE.match(lines[0]) if lines else None
    return [(single["path"], error)] if single else [("", error)]


def locate(text: str, path: str) -> int | None:
    """The 1-based line of ``path`` in the YAML ``text``, or of its deepest part that exists."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    best = None
    for part in [p for p in re.split(r"[.\[\]]", path) if p]:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
            if match is None:
                break
            best, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
            best = node.start_mark.line + 1
        else:
            break
    return best


def yaml_error_problem(error: yaml.YAMLError) -> Problem:
    mark = getattr(error, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    return Problem(path="", message=str(error).replace("\n", " "), line=line)


def problems_in(text: str, error: str) -> list[Problem]:
    return [Problem(path, message, locate(text, path) if path else None) for path, message in parse_problems(error)]

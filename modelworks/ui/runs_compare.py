"""Comparing 2-5 runs of a project: their parameters and final metrics side by side (the rows
that differ marked), a diff of their configs, and their metric series for overlaid curves."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from modelworks.errors import UserError
from modelworks.platform import runs
from modelworks.platform.db.models import Project, Run
from modelworks.platform.settings import Settings
from modelworks.server.redact import redact
from modelworks.ui.runs_report import color
from modelworks.ui.runs_view import config_yaml, run_name
from modelworks.ui.series import job_series

MIN_RUNS, MAX_RUNS = 2, 5


def parse_ids(text: str) -> list[int]:
    """``"3,7,12"`` as run ids: 2 to 5 distinct numbers, in the order given."""
    ids: list[int] = []
    if len(text) > 200:
        raise UserError(f"runs: at most {MAX_RUNS} run ids; got {len(text)} characters")
    for part in text.replace(" ", ",").split(","):
        if not part:
            continue
        if not part.isdigit() or len(part) > 12:
            raise UserError(f"runs must be run ids separated by commas, e.g. 3,7; got {part!r}")
        if int(part) not in ids:
            ids.append(int(part))
    if not MIN_RUNS <= len(ids) <= MAX_RUNS:
        raise UserError(f"compare {MIN_RUNS} to {MAX_RUNS} runs; got {len(ids)}")
    return ids


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as ``{"train.lr": 0.01, ...}``; lists are values (shown as JSON)."""
    if isinstance(config, dict) and config:
        flat: dict[str, Any] = {}
        for key, value in config.items():
            flat.update(flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: config} if prefix else {}


def shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, dict, bool)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


@dataclass
class Row:
    key: str
    values: list[str]
    differs: bool


@dataclass
class Compared:
    runs: list[Run]
    names: list[str]
    colors: list[str]
    params: list[Row] = field(default_factory=list)
    metrics: list[Row] = field(default_factory=list)
    diffs: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)  # (title, [(kind, line)])


def rows(dicts: list[dict[str, Any]]) -> list[Row]:
    keys = sorted({k for d in dicts for k in d})
    table = []
    for key in keys:
        values = [shown(d.get(key)) for d in dicts]
        table.append(Row(key, values, len(set(values)) > 1))
    return table


def diff_lines(a: str, b: str, name_a: str, name_b: str) -> list[tuple[str, str]]:
    """A unified diff of two configs as (kind, line): kind is add, del, hunk or same."""
    kinds = {"+": "add", "-": "del", "@": "hunk"}
    lines = difflib.unified_diff(a.splitlines(), b.splitlines(), name_a, name_b, lineterm="", n=2)
    return [(kinds.get(line[:1], "same"), line) for line in lines]


def compare(session: Session, settings: Settings, project: Project, ids: list[int]) -> Compared:
    """The runs ``ids`` of ``project`` side by side (NotFound for one that is not the project's)."""
    found = [runs.get_run(session, project, i) for i in ids]
    configs = [redact(r.config, settings) for r in found]
    view = Compared(
        runs=found,
        names=[f"#{r.id} {run_name(r, None)}" for r in found],
        colors=[color(i) for i in range(len(found))],
        params=rows([flatten(c) for c in configs]),
        metrics=rows([r.metrics for r in found]),
    )
    texts = [config_yaml(r.config, settings) for r in found]
    for name, text in zip(view.names[1:], texts[1:], strict=True):
        view.diffs.append((f"{view.names[0]} → {name}", diff_lines(texts[0], text, view.names[0], name)))
    return view


def compare_series(session: Session, project: Project, ids: list[int]) -> dict[str, Any]:
    """Each run's metric series, cut down, for overlaid curves: ``{"runs": [{id, name, color, series}]}``."""
    out = []
    for i, run_id in enumerate(ids):
        run = runs.get_run(session, project, run_id)
        series = job_series(session, run.job_id).as_json()["series"] if run.job_id is not None else {}
        out.append({"id": run.id, "name": f"#{run.id} {run_name(run, None)}", "color": color(i), "series": series})
    return {"runs": out}

"""A run's evaluation report as the run page shows it: the per-class table, the confusion matrix as
a heatmap, ROC and PR curves, all drawn on the server from the stored ``report.json``.

The report is read through the run's manifest (`modelworks.platform.runs.open_artifact`: the bytes
are checked against their SHA-256) into its typed model (`modelworks.store.report.Report`). A run's
files never change, so a parsed report is kept by its SHA-256.

Nothing here builds markup: the templates do, escaping every class name. The heatmap is a table
whose cells carry a shade class (``h0`` .. ``h9``, CSS in ``runs.css``), so it needs no inline
style; the curves are SVG polylines, their points computed here in a unit box.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from modelworks.errors import UserError
from modelworks.platform import runs
from modelworks.platform.db.models import Run
from modelworks.platform.errors import NotFound
from modelworks.platform.storage import Storage
from modelworks.store.files import REPORT_JSON
from modelworks.store.report import Report

SHADES = 10  # heatmap shade classes h0 .. h9
BOX = 200  # the curves' SVG box, in user units
PALETTE = ("#1f5fa8", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0e7490", "#a16207", "#be185d", "#4d7c0f", "#475569")


def color(i: int) -> str:
    """The i-th series colour (dark enough for 3:1 contrast on white)."""
    return PALETTE[i % len(PALETTE)]


@lru_cache(maxsize=256)
def _parse(sha256: str, text: bytes) -> Report:
    return Report.model_validate_json(text)


def read_run_report(storage: Storage, run: Run) -> Report | None:
    """The run's report, or None for a run without one."""
    if not any(e["path"] == REPORT_JSON for e in run.artifacts):
        return None
    entry, spool = runs.open_artifact(storage, run, REPORT_JSON)
    with spool:
        text = spool.read()
    try:
        return _parse(entry["sha256"], text)
    except ValueError as e:
        raise UserError(f"the {REPORT_JSON} of run {run.id} cannot be read: {e}") from e


@dataclass
class Heatmap:
    """The confusion matrix: counts, each cell's shade (its share of the true class's row) and labels."""

    names: list[str]
    rows: list[list[tuple[int, int]]]  # (count, shade 0..SHADES-1) per cell, rows: true class


@dataclass
class Curve:
    name: str
    color: str
    points: str  # SVG polyline points in the BOX, y pointing down


@dataclass
class ReportView:
    report: Report
    per_class: list[dict[str, Any]] = field(default_factory=list)
    heatmap: Heatmap | None = None
    roc: list[Curve] = field(default_factory=list)
    pr: list[Curve] = field(default_factory=list)
    summary: list[tuple[str, float | None]] = field(default_factory=list)


def heatmap(matrix: list[list[int]], names: list[str]) -> Heatmap:
    rows = []
    for row in matrix:
        total = sum(row) or 1
        rows.append([(int(c), min(SHADES - 1, int(SHADES * c / total))) for c in row])
    return Heatmap(names=names, rows=rows)


def polyline(xs: list[float], ys: list[float]) -> str:
    """Points in [0, 1]² as an SVG polyline in the BOX (x right, y up)."""
    return " ".join(f"{x * BOX:.1f},{(1 - y) * BOX:.1f}" for x, y in zip(xs, ys, strict=False))


def report_view(report: Report) -> ReportView:
    """What the report section of the run page draws."""
    view = ReportView(report=report, summary=list(report.summary.items()))
    metrics = report.metrics
    per_class = metrics.get("per_class")
    if isinstance(per_class, dict):
        view.per_class = [{"name": str(name), **values} for name, values in per_class.items()]
    matrix = metrics.get("confusion_matrix")
    if isinstance(matrix, list) and matrix:
        names = report.class_names or [str(i) for i in range(len(matrix))]
        view.heatmap = heatmap(matrix, [str(n) for n in names])
    curves = metrics.get("curves") or {}
    for i, (name, c) in enumerate((curves.get("roc") or {}).items()):
        view.roc.append(Curve(str(name), color(i), polyline(c["fpr"], c["tpr"])))
    for i, (name, c) in enumerate((curves.get("pr") or {}).items()):
        view.pr.append(Curve(str(name), color(i), polyline(c["recall"], c["precision"])))
    return view


def run_report_view(storage: Storage, run: Run) -> ReportView | None:
    try:
        report = read_run_report(storage, run)
    except NotFound:
        return None
    return report_view(report) if report is not None else None

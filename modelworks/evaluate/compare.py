"""Side-by-side comparison of runs from their reports (`modelworks.store.report.Report`), as a rich table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ConfigDict, Field
from rich.table import Table
from rich.text import Text

from modelworks.evaluate.metrics import direction, summarize
from modelworks.store.jsonfile import Stored
from modelworks.store.report import Baselines, Report, ReportExtra

MISSING = "-"


class Compared(Stored):
    """What the table needs of a report: its summary (or metrics) and extra facts. A CLI row such
    as a cross-validation fold gives only a summary."""

    model_config = ConfigDict(extra="ignore")

    summary: dict[str, float | None] | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    extra: ReportExtra = Field(default_factory=ReportExtra)
    baselines: Baselines | None = None

    @classmethod
    def of(cls, report: Report | Mapping[str, Any]) -> Compared:
        if isinstance(report, Report):
            return cls(summary=report.summary, metrics=report.metrics, extra=report.extra, baselines=report.baselines)
        return cls.model_validate({k: v for k, v in report.items() if v is not None})

    def scalars(self) -> dict[str, float | None]:
        return self.summary or summarize(self.metrics)


def compare_table(runs: list[tuple[str, Report | Mapping[str, Any]]]) -> Table:
    """One column per run, one row per scalar metric (the union over runs), the best value in bold green.

    "Best" follows each metric's direction (`metrics.direction`); ties are all highlighted, and a
    row with a single value highlights nothing. Rows for the model type and parameter count come
    first when any report's ``extra`` carries them.
    """
    table = Table(title="Run comparison")
    table.add_column("metric", style="bold")
    for name, _ in runs:
        table.add_column(Text(name), justify="right")  # Text: run names are not rich markup

    compared = [Compared.of(report) for _, report in runs]
    types = [c.extra.model_type for c in compared]
    params = [c.extra.parameter_count for c in compared]
    if any(t is not None for t in types):
        table.add_row("model", *[Text(MISSING if t is None else str(t)) for t in types])
    if any(p is not None for p in params):
        table.add_row("params", *[Text(_fmt_params(p)) for p in params], end_section=True)

    summaries = [c.scalars() for c in compared]
    names = list(dict.fromkeys(k for summary in summaries for k in summary))
    for metric in names:
        values = [summary.get(metric) for summary in summaries]
        present = [v for v in values if v is not None]
        best = (min if direction(metric) == "min" else max)(present) if len(present) > 1 else None
        cells = [
            Text(MISSING) if v is None else Text(f"{v:.4g}", style="bold green" if v == best else "") for v in values
        ]
        table.add_row(Text(metric), *cells)
    if any(c.baselines is not None for c in compared):
        _baseline_rows(table, [c.baselines for c in compared])
    return table


def _baseline_rows(table: Table, baselines: list[Baselines | None]) -> None:
    """The best baseline of each run and the model's margin over it, red where the model loses."""
    best = [MISSING if b is None or b.best is None else f"{b.best} {b.best_value:.4g}" for b in baselines]
    table.add_row("best baseline", *[Text(cell) for cell in best], style="italic")
    cells = []
    for b in baselines:
        if b is None or b.margin is None:
            cells.append(Text(MISSING))
        else:
            text = f"{b.margin:+.4g}" + ("" if b.beaten else " (not beaten)")
            cells.append(Text(text, style="" if b.beaten else "bold red"))
    table.add_row("margin over baseline", *cells)


def _fmt_params(value: Any) -> str:
    if value is None:
        return MISSING
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)

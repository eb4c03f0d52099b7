"""Side-by-side comparison of runs from their ``report.json``, as a rich table."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from modelworks.evaluate.metrics import direction, summarize

MISSING = "-"

# Where the model type and parameter count may sit in report["extra"], first match wins
# (modelworks.api writes {"model": "<type>", "parameters": <count>}).
_MODEL_TYPE_KEYS = (("model",), ("model_type",), ("model", "type"))
_PARAMS_KEYS = (("parameters",), ("params",), ("num_params",), ("model", "parameters"))


def compare_table(runs: list[tuple[str, dict[str, Any]]]) -> Table:
    """One column per run, one row per scalar metric (the union over runs), the best value in bold green.

    "Best" follows each metric's direction (`metrics.direction`); ties are all highlighted, and a
    row with a single value highlights nothing. Rows for the model type and parameter count come
    first when any report's ``extra`` carries them.
    """
    table = Table(title="Run comparison")
    table.add_column("metric", style="bold")
    for name, _ in runs:
        table.add_column(Text(name), justify="right")  # Text: run names are not rich markup

    extras = [report.get("extra") or {} for _, report in runs]
    types = [_lookup(extra, _MODEL_TYPE_KEYS) for extra in extras]
    params = [_lookup(extra, _PARAMS_KEYS) for extra in extras]
    if any(t is not None for t in types):
        table.add_row("model", *[Text(MISSING if t is None else str(t)) for t in types])
    if any(p is not None for p in params):
        table.add_row("params", *[Text(_fmt_params(p)) for p in params], end_section=True)

    summaries = [report.get("summary") or summarize(report.get("metrics", {})) for _, report in runs]
    names = list(dict.fromkeys(k for summary in summaries for k in summary))
    for metric in names:
        values = [summary.get(metric) for summary in summaries]
        present = [v for v in values if v is not None]
        best = (min if direction(metric) == "min" else max)(present) if len(present) > 1 else None
        cells = [
            Text(MISSING) if v is None else Text(f"{v:.4g}", style="bold green" if v == best else "") for v in values
        ]
        table.add_row(Text(metric), *cells)
    return table


def _lookup(extra: dict[str, Any], paths: tuple[tuple[str, ...], ...]) -> Any:
    for path in paths:
        value: Any = extra
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None and not isinstance(value, dict):
            return value
    return None


def _fmt_params(value: Any) -> str:
    if value is None:
        return MISSING
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)

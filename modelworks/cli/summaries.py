"""What `modelworks tune` and `modelworks export` print: a short summary for a person, or (``--json``)
the result as one JSON document."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from modelworks.cli.output import console, print_json, say

if TYPE_CHECKING:
    from modelworks.exporting import ExportResult
    from modelworks.store.report import Baselines
    from modelworks.tuning import TuneResult


def tune_summary(result: TuneResult, *, top: int, as_json: bool) -> None:
    """The best ``top`` trials as a table, the trials' outcomes, notes, and the study's files."""
    from rich.table import Table

    frame = result.trials
    paths = {
        "study": result.study_dir,
        "best config": result.best_config,
        "best run": result.best_run,
        "report": result.report,
    }
    if as_json:
        print_json(
            {
                "metric": result.metric,
                "direction": result.direction,
                "best_value": result.best_value,
                "best_params": result.best_params,
                "best_trial": result.best_trial,
                "notes": result.notes,
                **{label.replace(" ", "_"): path for label, path in paths.items()},
                "trials": frame.astype(object).where(frame.notna(), None).to_dict(orient="records"),
            }
        )
        return
    done = frame[frame["state"] == "COMPLETE"].sort_values(result.metric, ascending=result.direction == "min")
    better = "higher" if result.direction == "max" else "lower"
    table = Table(title=f"best trials by {result.metric} ({better} is better)")
    params = [c for c in frame.columns if c not in ("number", "state", result.metric, "epochs", "duration_s", "run")]
    for column in ["trial", result.metric, *params, "epochs", "seconds"]:
        table.add_column(column, justify="left" if column in params else "right")
    for _, row in done.head(top).iterrows():
        cells = [
            str(row["number"]),
            f"{row[result.metric]:.4f}",
            *(_cell(row[p]) for p in params),
            _cell(row["epochs"]),
            _cell(row["duration_s"]),
        ]
        table.add_row(*cells)
    console.print(table)
    counts = frame["state"].str.lower().value_counts()
    say(f"{len(frame)} trial{'s' if len(frame) != 1 else ''}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    for note in result.notes:
        say(f"note: {note}")
    for label, path in paths.items():
        if path is not None:
            say(f"{label}: {path}")


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() and abs(value) >= 1 else f"{value:.4g}"
    return str(value)


def export_summary(result: ExportResult, *, as_json: bool) -> None:
    """The exported file, its check against PyTorch, the int8 model if any, and its interface."""
    record = result.record
    if as_json:
        print_json({"folder": result.folder, "file": result.file, "export": record})
        return
    check = record.check
    say(f"{record.format} model: {result.file} ({_file_size(record.size_bytes)})")
    say(
        f"check on the {check.split} split: {check.rows} rows, max abs difference {check.max_abs_diff:.2e} "
        f"(tolerance {check.tolerance:g}): passed"
    )
    if record.quantized is not None:
        q = record.quantized
        ratio = q.size_ratio
        size = f"{ratio:.1f}x smaller" if ratio >= 1 else f"{1 / ratio:.1f}x larger: too small a model to gain"
        change = f"{100 * q.change:+.2f} points" if q.metric == "accuracy" else f"{q.change:+.4g}"
        say(
            f"int8 model: {result.folder / q.file} ({_file_size(q.size_bytes)}, {size}); {q.metric} "
            f"{q.float_value:.4f} -> {q.quantized:.4f} ({change})"
        )
    say(f"inputs, in order: {', '.join(record.inputs)}; interface: {result.folder / 'README.md'}")


def _file_size(n: int) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def baseline_line(baselines: Baselines) -> str:
    """``baselines: dummy accuracy 0.31, linear accuracy 0.65 (1.2s); the model does NOT beat ...``."""
    parts = []
    for r in baselines.results:
        value = r.summary.get(baselines.metric)
        if r.skipped:
            parts.append(f"{r.name} skipped ({r.skipped})")
        elif value is not None:
            parts.append(f"{r.name} {baselines.metric} {value:.4f} ({r.seconds or 0:.1f}s)")
    return f"baselines: {', '.join(parts)}; {baselines.verdict()}"

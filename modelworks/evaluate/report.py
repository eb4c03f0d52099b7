"""Run reports: ``report.json`` for machines and a self-contained ``report.html`` for people.

The HTML page has no external assets: the CSS is inline and every plot is inline SVG written by
`modelworks.evaluate.svg` (milliseconds, where drawing with matplotlib took seconds), its text
drawn by the browser's fonts. All text from configs, data and class names is escaped.

The training history comes from the trainer's ``metrics.jsonl``: one JSON object per line,
``{"kind": "epoch", "epoch", "step", "train_loss", "val_loss", "val_<metric>", ...}`` once per
epoch and ``{"kind": "step", "step", "epoch", "loss", "lr"}`` every few optimizer steps.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modelworks.data.schema import Task
from modelworks.evaluate import svg
from modelworks.evaluate.metrics import main_metric, summarize
from modelworks.store.atomic import atomic_write_text
from modelworks.store.files import METRICS, REPORT_HTML
from modelworks.store.jsonfile import json_safe
from modelworks.store.metrics import MetricsLog, TrainingRecord
from modelworks.store.report import Baselines, MainMetric, Report, ReportExtra, write_report_json

__all__ = ["read_history", "write_report"]

MAX_SCATTER_POINTS = 2000
MAX_ANNOTATED_CLASSES = 25  # confusion-matrix cells get their count written in up to this many classes
MAX_LEGEND_CLASSES = 12


def read_history(run_dir: Path) -> list[TrainingRecord]:
    """The records of the run's ``metrics.jsonl`` (see `MetricsLog.read`)."""
    return MetricsLog(Path(run_dir) / METRICS).read()


def write_report(
    run_dir: Path,
    title: str,
    metrics: dict[str, Any],
    history: Sequence[dict[str, Any] | TrainingRecord],
    task: Task,
    class_names: list[str] | None,
    extra: dict[str, Any] | None = None,
    predictions: dict[str, list[float]] | None = None,
    baselines: Baselines | None = None,
) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into ``run_dir``; return their paths.

    ``metrics`` is what `compute_metrics` returned; ``extra`` is shown as a key/value table (config
    summary, parameter count, split sizes...); ``predictions`` (``{"y_true": [...], "y_pred": [...]}``)
    feeds the predicted-vs-true scatter of regression reports; ``baselines`` are shown beside the model.
    """
    run_dir = Path(run_dir)
    summary = summarize(metrics)
    name, direction = main_metric(task)
    report = Report(
        title=title, task=task, class_names=class_names,
        main_metric=MainMetric(name=name, direction=direction, value=summary.get(name)),
        summary=summary, metrics=json_safe(metrics), extra=ReportExtra.model_validate(json_safe(extra or {})),
        baselines=baselines,
    )  # fmt: skip
    records = [r if isinstance(r, TrainingRecord) else TrainingRecord.model_validate(r) for r in history]
    json_path, html_path = write_report_json(run_dir, report), run_dir / REPORT_HTML
    atomic_write_text(html_path, _html(report, records, predictions))
    return json_path, html_path


# -------------------------------------------------------------------------------------- the page


def _html(report: Report, history: list[TrainingRecord], predictions: dict[str, list[float]] | None) -> str:
    metrics, task = report.metrics, report.task
    main = report.main_metric
    sections = [
        f"<h1>{escape_html(report.title)}</h1>",
        f'<p class="headline">{escape_html(main.name)}: <b>{escape_html(format_value(main.value))}</b> '
        f'<span class="muted">({escape_html("higher" if main.direction == "max" else "lower")} is better; '
        f"task: {escape_html(task)})</span></p>",
    ]
    if metrics.get("notes"):
        sections.append(
            "<ul class='notes'>" + "".join(f"<li>{escape_html(n)}</li>" for n in metrics["notes"]) + "</ul>"
        )
    if report.baselines is not None:
        verdict = report.baselines.verdict()
        style = "headline" if report.baselines.beaten else "notes"
        sections.append(f"<p class='{style}'>{escape_html(verdict[0].upper() + verdict[1:])}.</p>")
    scalars = [[k, format_value(v)] for k, v in report.summary.items()]
    sections.append(section_html("Metrics", table_html(["metric", "value"], scalars)))
    if report.baselines is not None:
        sections.append(section_html("Baselines", _baselines_table(report.baselines, report.summary)))

    training = [p for p in (_loss_plot(history), _metric_plot(history)) if p]
    sections.append(
        section_html("Training", plots_html(training) if training else "<p class='muted'>No training history.</p>")
    )

    evaluation = []
    if task == "regression":
        if predictions:
            evaluation.append(_scatter_plot(predictions))
    else:
        names = report.class_names
        if not names or len(names) != len(metrics["confusion_matrix"]):
            names = list(metrics["per_class"])
        evaluation.append(_confusion_plot(metrics["confusion_matrix"], names))
        curves = metrics.get("curves", {})
        if curves.get("roc"):
            evaluation.append(_roc_plot(curves["roc"], metrics.get("roc_auc")))
        if curves.get("pr"):
            evaluation.append(_pr_plot(curves["pr"], metrics.get("pr_auc")))
    if evaluation:
        sections.append(section_html("Evaluation", plots_html(evaluation)))

    if task != "regression":
        rows = [
            [n, format_value(c["precision"]), format_value(c["recall"]), format_value(c["f1"]), str(c["support"])]
            for n, c in metrics["per_class"].items()
        ]
        sections.append(section_html("Per class", table_html(["class", "precision", "recall", "f1", "support"], rows)))
    shown = report.extra.model_dump(exclude_unset=True)
    if shown:
        extra = [[k, v] for k, v in _flatten(shown).items()]
        sections.append(section_html("Run", table_html(["key", "value"], extra)))

    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape_html(report.title)}</title><style>{HTML_CSS}</style></head>\n<body>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )


def _baselines_table(baselines: Baselines, model: dict[str, float | None]) -> str:
    """The model and each baseline on the same rows: the kept metrics, time, what was fitted."""
    names = list(dict.fromkeys(k for r in baselines.results for k in r.summary))
    rows = [["model", *(format_value(model.get(k)) for k in names), "", "the run's model"]]
    for r in baselines.results:
        cells = [format_value(r.summary.get(k)) for k in names]
        seconds = "" if r.seconds is None else f"{r.seconds:.2f}"
        rows.append([r.name, *cells, seconds, f"skipped: {r.skipped}" if r.skipped else r.method])
    return table_html(["", *names, "seconds", "method"], rows)


HTML_CSS = """
body { font-family: system-ui, -apple-system, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; margin-top: 2rem; }
.headline { font-size: 1.2rem; } .muted { color: #777; font-size: .9rem; }
.notes { background: #fff8e1; border-left: 4px solid #f0b400; padding: .5rem 2rem; }
table { border-collapse: collapse; font-size: .9rem; }
th, td { border: 1px solid #ddd; padding: .25rem .6rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; } th { background: #f5f5f5; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem; } .plots svg { max-width: 100%; height: auto; }
figure { margin: 0; display: flex; flex-wrap: wrap; gap: .5rem; }
"""


def section_html(heading: str, body: str) -> str:
    return f"<h2>{escape_html(heading)}</h2>\n{body}"


def table_html(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape_html(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_td(c) for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def plots_html(images: list[str]) -> str:
    return '<div class="plots">' + "".join(images) + "</div>"


def _td(cell: Any) -> str:
    return f"<td class='num'>{escape_html(cell)}</td>" if _is_number(cell) else f"<td>{escape_html(cell)}</td>"


# ----------------------------------------------------------------------------------------- plots


def _loss_plot(history: list[TrainingRecord]) -> str:
    """Train and validation loss per epoch, with step-level loss faintly behind them."""
    epochs = [r for r in history if r.is_epoch]
    steps = [r for r in history if r.kind == "step" and r.step is not None and _finite(r.loss)]
    if not any(_finite(r.train_loss) or _finite(r.val_loss) for r in epochs) and not steps:
        return ""
    series = []
    if steps:
        x, label = [r.step for r in steps], "step"
        ends = [(r.step, r.epoch) for r in epochs if r.step is not None and r.epoch is not None]
        if ends:
            x, label = _steps_to_epochs(x, ends), "epoch"
        series.append(svg.Series(x, [r.loss for r in steps], "train loss (steps)", opacity=0.25, width=0.8))
    else:
        label = "epoch"
    for key, color in (("train_loss", svg.BLUE), ("val_loss", svg.ORANGE)):
        points = [(r.epoch, r.metric(key)) for r in epochs if r.epoch is not None and _finite(r.metric(key))]
        if points:
            xs, ys = zip(*points, strict=True)
            series.append(svg.Series(xs, ys, key.replace("_", " "), color=color, markers=True))
    chart = svg.chart(series, title="Loss", xlabel=label, ylabel="loss", integer_x=label == "epoch")
    return svg.figure(chart, "loss curves")


def _steps_to_epochs(steps: list[float], ends: list[tuple[float, float]]) -> list[float]:
    """Each step's fractional epoch, from the (step, epoch) at which each epoch ended.

    Epoch ``e`` spans the steps after the previous epoch's end up to its own, whether the trainer
    counts epochs from 0 or 1; steps past the last logged epoch (a run cut short) extrapolate.
    """
    xp = [0.0] + [s for s, _ in ends]
    fp = [ends[0][1] - 1.0] + [e for _, e in ends]
    last_len = max(xp[-1] - xp[-2], 1.0)
    return [float(np.interp(s, xp, fp)) if s <= xp[-1] else fp[-1] + (s - xp[-1]) / last_len for s in steps]


def _metric_plot(history: list[TrainingRecord]) -> str:
    """One small panel per validation metric (``val_*`` besides the loss), with ``train_*`` if logged."""
    epochs = [r for r in history if r.is_epoch and r.epoch is not None]
    names = sorted({k[4:] for r in epochs for k in r.metric_names() if k.startswith("val_") and k != "val_loss"})
    names = [n for n in names if any(_finite(r.metric(f"val_{n}")) for r in epochs)]
    if not names:
        return ""
    panels = []
    for name in names:
        series = []
        for prefix, color in (("train_", svg.BLUE), ("val_", svg.ORANGE)):
            points = [(r.epoch, r.metric(prefix + name)) for r in epochs if _finite(r.metric(prefix + name))]
            if points:
                xs, ys = zip(*points, strict=True)
                series.append(svg.Series(xs, ys, prefix.rstrip("_"), color=color, markers=True))
        panels.append(svg.chart(series, title=name, xlabel="epoch", integer_x=True, size=(340, 250)))
    return svg.figure(panels, "validation metric curves")


def _confusion_plot(matrix: list[list[int]], names: list[str]) -> str:
    chart = svg.heatmap(
        matrix, names, title="Confusion matrix", xlabel="predicted", ylabel="true",
        annotate=len(names) <= MAX_ANNOTATED_CLASSES,
    )  # fmt: skip
    return svg.figure(chart, "confusion matrix")


def _class_curves(curves: dict[str, dict[str, list[float]]], x: str, y: str) -> list[svg.Series]:
    """One line per class, the first `MAX_LEGEND_CLASSES` of them named in the legend."""
    return [
        svg.Series(c[x], c[y], name if i < MAX_LEGEND_CLASSES else None, color=svg.COLORS[i % len(svg.COLORS)])
        for i, (name, c) in enumerate(curves.items())
    ]


def _roc_plot(curves: dict[str, dict[str, list[float]]], auc: float | None) -> str:
    chance = svg.Series([0, 1], [0, 1], color=svg.GREY, dashed=True, width=0.8)
    chart = svg.chart(
        [*_class_curves(curves, "fpr", "tpr"), chance], title=f"ROC (AUC {format_value(auc)})",
        xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.02),
        legend="lower right", size=(400, 360),
    )  # fmt: skip
    return svg.figure(chart, "ROC curves")


def _pr_plot(curves: dict[str, dict[str, list[float]]], ap: float | None) -> str:
    chart = svg.chart(
        _class_curves(curves, "recall", "precision"), title=f"Precision-recall (AP {format_value(ap)})",
        xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), legend="lower left", size=(400, 360),
    )  # fmt: skip
    return svg.figure(chart, "precision-recall curves")


def _scatter_plot(predictions: dict[str, list[float]]) -> str:
    y_true = np.asarray(predictions["y_true"], dtype=np.float64)
    y_pred = np.asarray(predictions["y_pred"], dtype=np.float64)
    if len(y_true) > MAX_SCATTER_POINTS:
        keep = np.random.default_rng(0).choice(len(y_true), MAX_SCATTER_POINTS, replace=False)
        y_true, y_pred = y_true[keep], y_pred[keep]
    series = [svg.Series(y_true.tolist(), y_pred.tolist(), line=False, markers=True, opacity=0.5)]
    both = np.concatenate([y_true, y_pred])
    both = both[np.isfinite(both)]
    if both.size:
        ends = [float(both.min()), float(both.max())]
        series.append(svg.Series(ends, ends, color=svg.GREY, dashed=True, width=0.8))
    chart = svg.chart(series, title="Predicted vs true", xlabel="true", ylabel="predicted", size=(400, 400))
    return svg.figure(chart, "predicted versus true values")


# --------------------------------------------------------------------------------------- helpers


def escape_html(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_number(text: Any) -> bool:
    try:
        float(str(text).replace(",", ""))
    except ValueError:
        return False
    return True


def format_value(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return f"{value:,}"
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested dicts as dotted keys, with values formatted for display."""
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key + "."))
        elif isinstance(v, (list, tuple)):
            out[key] = json.dumps(json_safe(v))
        else:
            out[key] = format_value(v)
    return out

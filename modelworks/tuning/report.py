"""The tune report: ``tune.json`` for machines and a self-contained ``tune.html`` for people.

Drawn with the run report's helpers (`modelworks.evaluate.report`): inline CSS, plots as inline
SVG (`modelworks.evaluate.svg`), every piece of text escaped. Three plots: the optimization
history (each trial's value and the best so far), the metric per epoch of every trial (where the
pruned ones stopped), and the parameter importance when there is one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from modelworks.evaluate import svg
from modelworks.evaluate.report import HTML_CSS, escape_html, format_value, plots_html, section_html, table_html
from modelworks.store.atomic import atomic_write_text
from modelworks.store.files import TUNE_HTML, TUNE_JSON
from modelworks.store.jsonfile import write_json

STATE_COLORS = {"COMPLETE": svg.BLUE, "PRUNED": svg.COLORS[3], "FAIL": "black", "RUNNING": svg.GREY}

Curves = dict[int, tuple[str, dict[int, float]]]  # trial number -> (state, {epoch: metric})


def write_tune_report(
    study_dir: Path, summary: dict[str, Any], trials: pd.DataFrame, curves: Curves
) -> tuple[Path, Path]:
    """Write ``tune.json`` and ``tune.html`` into `study_dir`; return their paths."""
    records = json.loads(trials.to_json(orient="records"))
    report = {**summary, "trials": records}
    json_path, html_path = Path(study_dir) / TUNE_JSON, Path(study_dir) / TUNE_HTML
    write_json(json_path, report)
    atomic_write_text(html_path, _html(report, trials, curves))
    return json_path, html_path


def _html(report: dict[str, Any], trials: pd.DataFrame, curves: Curves) -> str:
    metric, best = report["metric"], report["best"]
    better = "higher" if report["direction"] == "max" else "lower"
    counts = ", ".join(f"{n} {state.lower()}" for state, n in report["counts"].items()) or "no trials"
    headline = (
        f"best {escape_html(metric)}: <b>{escape_html(format_value(best['value']))}</b> (trial {best['trial']})"
        if best
        else "no completed trial yet"
    )
    sections = [
        f"<h1>{escape_html(report['title'])}</h1>",
        f"<p class='headline'>{headline} <span class='muted'>({better} is better; {escape_html(counts)})</span></p>",
    ]
    if report["notes"]:
        sections.append("<ul class='notes'>" + "".join(f"<li>{escape_html(n)}</li>" for n in report["notes"]) + "</ul>")
    if best:
        rows = [
            [k, json.dumps(v) if isinstance(v, (list, dict)) else format_value(v)] for k, v in best["params"].items()
        ]
        rows += [["run", best["run"] or "n/a"], ["config", best["config"]]]
        sections.append(section_html("Best trial", table_html(["param", "value"], rows)))
    plots = [
        p
        for p in (
            _history_plot(trials, curves, metric, report["direction"]),
            _curves_plot(curves, metric),
            _importance_plot(report["importance"]),
        )
        if p
    ]
    sections.append(
        section_html("Search", plots_html(plots) if plots else "<p class='muted'>No finished trials to plot.</p>")
    )
    if report["importance"] is None:
        sections.append("<p class='muted'>No parameter importance (see the notes above).</p>")
    shown = trials.astype(object).where(trials.notna(), "")
    rows = [[format_value(v) if isinstance(v, float) else v for v in row] for row in shown.itertuples(index=False)]
    sections.append(section_html("Trials", table_html(list(trials.columns), rows)))
    settings = [
        [k, json.dumps(v) if isinstance(v, (dict, list)) else format_value(v)] for k, v in report["settings"].items()
    ]
    settings += [[f"space: {k}", json.dumps(v)] for k, v in report["space"].items()]
    sections.append(section_html("Settings", table_html(["key", "value"], settings)))
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape_html(report['title'])}</title><style>{HTML_CSS}</style></head>\n<body>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )


def _history_plot(trials: pd.DataFrame, curves: Curves, metric: str, direction: str) -> str:
    """Each completed trial's value by trial number and the best so far; pruned trials at the
    value they were stopped with."""
    done = trials[trials["state"] == "COMPLETE"].dropna(subset=[metric])
    done = done[done[metric].map(math.isfinite)]
    if done.empty:
        return ""
    numbers, values = done["number"].tolist(), done[metric].tolist()
    best = (done[metric].cummax() if direction == "max" else done[metric].cummin()).tolist()
    last = int(trials["number"].max())
    step_x = [x for n, m in zip(numbers, [*numbers[1:], last], strict=True) for x in (n, m)]
    step_y = [y for y in best for _ in range(2)]  # a step after each trial, as "best so far" holds
    series = [
        svg.Series(step_x, step_y, "best so far", color=svg.ORANGE),
        svg.Series(numbers, values, "completed", line=False, markers=True),
    ]
    pruned = [
        (n, v[max(v)]) for n, (state, v) in curves.items() if state == "PRUNED" and v and math.isfinite(v[max(v)])
    ]
    if pruned:
        xs, ys = zip(*pruned, strict=True)
        series.append(svg.Series(xs, ys, "pruned (last value)", color=STATE_COLORS["PRUNED"], line=False, markers=True))
    chart = svg.chart(series, title="Optimization history", xlabel="trial", ylabel=metric, integer_x=True)
    return svg.figure(chart, "optimization history")


def _curves_plot(curves: Curves, metric: str) -> str:
    """The metric per epoch of every trial, pruned ones in red: where each was stopped."""
    if not any(values for _, values in curves.values()):
        return ""
    series, seen = [], set()
    for state, values in curves.values():
        if not values:
            continue
        steps = sorted(values)
        label = state.lower() if state not in seen else None
        seen.add(state)
        color = STATE_COLORS.get(state, svg.GREY)
        series.append(svg.Series(steps, [values[s] for s in steps], label, color=color, opacity=0.7, width=1))
    chart = svg.chart(series, title="Metric per epoch", xlabel="epoch", ylabel=metric, integer_x=True)
    return svg.figure(chart, "validation metric per epoch of each trial")


def _importance_plot(importance: dict[str, float] | None) -> str:
    if not importance:
        return ""
    chart = svg.bars(importance, title="Parameter importance", xlabel="importance (normalized to sum to 1)")
    return svg.figure(chart, "parameter importance")

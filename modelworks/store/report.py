"""``report.json``: a run's evaluation, declared once.

Written by `modelworks.evaluate.report.write_report` beside ``report.html``; read by the engine,
the CLI, the job runner, tuning and the platform through `read_report`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from modelworks.store.continual import Continuation
from modelworks.store.files import REPORT_JSON
from modelworks.store.jsonfile import Stored, read_model, write_model

Task = Literal["binary", "multiclass", "regression"]  # as `modelworks.data.schema.Task`, without importing torch


class MainMetric(Stored):
    """The task's headline metric, which way it improves, and its value (None where undefined)."""

    name: str
    direction: Literal["max", "min"]
    value: float | None = None


class ReportExtra(Stored):
    """Facts about the run shown beside the metrics; any further key is kept and shown as is.

    The engine writes `run`, `model` (the model type), `parameters`, `evaluated_on`, the
    ``<split>_rows`` counts, `best_epoch`, `stopped_early`, `warnings` and `dropped_rows`.
    """

    model_config = ConfigDict(extra="allow")

    run: str | None = None
    model: Any = None  # the model type; a dict with a "type" in reports written by other tools
    parameters: int | None = None
    evaluated_on: str | None = None
    best_epoch: int | None = None
    stopped_early: bool | None = None
    warnings: list[str] | None = None  # settings that could not take effect (`engine.settings`)
    dropped_rows: dict[str, int] | None = None  # rows left out before splitting, by reason (a missing target)
    continual: Continuation | None = None  # a continuation (train.init_from): lineage, new vs old data, forgetting

    @model_serializer(mode="wrap")
    def _facts_present(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Only the facts the run has: a declared field without a value is left out of the file."""
        extras = self.model_extra or {}
        return {k: v for k, v in handler(self).items() if v is not None or k in extras}

    @property
    def model_type(self) -> str | None:
        """The model type, whichever way the report spells it ("model", "model_type", model.type)."""
        if isinstance(self.model, dict):
            return None if self.model.get("type") is None else str(self.model["type"])
        if self.model is not None:
            return str(self.model)
        other = (self.model_extra or {}).get("model_type")
        return None if other is None else str(other)

    @property
    def parameter_count(self) -> Any:
        """The parameter count, whichever way the report spells it (parameters, params, num_params,
        model.parameters)."""
        if self.parameters is not None:
            return self.parameters
        if isinstance(self.model, dict) and self.model.get("parameters") is not None:
            return self.model["parameters"]
        extras = self.model_extra or {}
        return next((extras[k] for k in ("params", "num_params") if extras.get(k) is not None), None)

    def kept_on_refresh(self) -> dict[str, Any]:
        """What training alone knows and a recomputed report keeps: the best epoch, early stopping,
        the warnings about its settings, the rows dropped from its data and a continuation's facts."""
        kept = ("best_epoch", "stopped_early", "warnings", "dropped_rows", "continual")
        return {k: getattr(self, k) for k in kept if getattr(self, k) is not None}


class BaselineResult(Stored):
    """One classical baseline fitted on the run's training split and scored on its evaluation rows."""

    name: str = Field(description="dummy (majority class or mean) or linear")
    method: str = Field("", description="what was fitted, e.g. TF-IDF character 1-3-grams -> linear SVM")
    summary: dict[str, float | None] = Field(default_factory=dict, description="its scalar metrics")
    seconds: float | None = None
    train_rows: int | None = Field(None, description="training rows it saw (capped to keep it cheap)")
    skipped: str | None = Field(None, description="why it did not run; a baseline never fails a run")


class Baselines(Stored):
    """The run's baselines and the model's margin over the best of them on the headline metric.

    `margin` is signed so that a positive number means the model is better, whichever way the
    metric improves; None when no baseline produced the metric.
    """

    metric: str
    results: list[BaselineResult] = Field(default_factory=list)
    best: str | None = None
    best_value: float | None = None
    model_value: float | None = None
    margin: float | None = None
    note: str | None = Field(None, description="where they come from when not fitted for this run, or why none ran")

    @property
    def beaten(self) -> bool | None:
        return None if self.margin is None else self.margin > 0

    def verdict(self) -> str:
        """One plain sentence: does the model beat its best baseline, and by how much (and the note)."""
        if self.margin is None:
            reasons = [f"{r.name}: {r.skipped}" for r in self.results if r.skipped] + [self.note] * bool(self.note)
            return "no baseline to compare with" + (f" ({'; '.join(reasons)})" if reasons else "")
        best = next(r for r in self.results if r.name == self.best)
        versus = f"{self.metric} {_fmt(self.model_value)} vs {_fmt(self.best_value)} for the {best.name} baseline"
        versus += f" ({best.method})" if best.method else ""
        versus += f"; {self.note}" if self.note else ""
        if self.margin > 0:
            return f"the model beats its best baseline by {_fmt(self.margin)}: {versus}"
        if self.margin == 0:
            return f"the model only ties its best baseline, it does NOT beat it: {versus}"
        return f"the model does NOT beat its best baseline (margin {_fmt(self.margin)}): {versus}"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


class Report(Stored):
    """``report.json``: the metrics of a run on one split, with its headline metric and summary."""

    title: str
    task: Task
    class_names: list[str] | None = None
    main_metric: MainMetric
    summary: dict[str, float | None] = Field(default_factory=dict, description="the scalar metrics")
    metrics: dict[str, Any] = Field(default_factory=dict, description="everything compute_metrics returned")
    extra: ReportExtra = Field(default_factory=ReportExtra)
    baselines: Baselines | None = Field(None, description="classical baselines on the same rows (evaluate.baselines)")


def report_path(run_dir: Path) -> Path:
    return Path(run_dir) / REPORT_JSON


def read_report(run_dir: Path) -> Report:
    """The report of the run in `run_dir`; a missing or damaged file is a `UserError` naming it."""
    return read_model(report_path(run_dir), Report)


def write_report_json(run_dir: Path, report: Report) -> Path:
    """Write `report` as strict JSON into `run_dir`; returns the file's path."""
    path = report_path(run_dir)
    write_model(path, report)
    return path

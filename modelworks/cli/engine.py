"""The engine's verbs: init, train, evaluate, predict, report, compare, tune, compress, export.

Each is a thin layer over `modelworks.api`. What a person reads is a short summary (the main
metrics and where the files are); ``--json`` prints the machine-readable form instead, one JSON
document on stdout. Train, evaluate, tune, compress and export also run on a platform server with
``--remote`` (`modelworks.cli.remote.remote_verb`).
"""

from __future__ import annotations

import sys
import warnings
import webbrowser
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from modelworks.cli.output import HEADLINE, Json, console, err, headline, print_json, say, user_errors
from modelworks.cli.remote import remote_verb
from modelworks.cli.summaries import baseline_line, export_summary, tune_summary
from modelworks.errors import UserError
from modelworks.store.files import CV_JSON, REPORT_HTML

if TYPE_CHECKING:
    from modelworks.store.cv import CrossValidation
    from modelworks.store.report import Baselines

app = typer.Typer()

SPLITS = ("train", "validation", "test")


def _templates() -> list[str]:
    folder = resources.files("modelworks.config.templates")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


@app.command()
@user_errors
def init(task: str = typer.Argument(..., help="starter config: " + ", ".join(_templates()))) -> None:
    """Print a commented starter experiment file for a task."""
    if task not in _templates():
        raise UserError(f"no starter config {task!r}; choose one of: {', '.join(_templates())}")
    sys.stdout.write(
        resources.files("modelworks.config.templates").joinpath(f"{task}.yaml").read_text(encoding="utf-8")
    )


# --- train


def _remote_config(path: Path | None, overrides: list[str]) -> dict:
    """The experiment file with its --set overrides applied, as sent to the server (which checks it)."""
    from modelworks.config.load import apply_overrides, read_yaml

    if path is None:
        raise UserError("give the experiment file to run on the server")
    return apply_overrides(read_yaml(path), list(overrides))


def _train_job(config: Path | None, set_: list[str], resume: str | None, init_from: str | None, **_: Any) -> dict:
    if resume is not None:
        raise UserError("--resume is for local runs; a platform job resumes from its checkpoint by itself")
    if init_from is not None:
        raise UserError("--init-from is for local runs; on the platform: modelworks remote continue MODEL@ALIAS")
    return _remote_config(config, set_)


@app.command()
@user_errors
@remote_verb("train", _train_job)
def train(
    config: Path | None = typer.Argument(None, help="experiment YAML (not needed with --resume)"),
    set_: list[str] = typer.Option([], "--set", help="override a config value: KEY.PATH=VALUE"),
    resume: str | None = typer.Option(None, "--resume", help="continue this run from its last checkpoint"),
    init_from: str | None = typer.Option(
        None, "--init-from", help="start from this run's weights and preprocessing (train.init_from)"
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
    as_json: bool = Json,
) -> None:
    """Train a model; writes a run folder with weights, metrics and a report (with --remote: a job on the server)."""
    from modelworks import api

    set_ = [*set_, f"train.init_from={init_from}"] if init_from is not None else set_

    if config is None and resume is None:
        raise UserError("give an experiment file (modelworks train exp.yaml) or --resume RUN")
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning  # restored by catch_warnings
        run = api.train(config, overrides=set_, resume=resume, progress=False if quiet or as_json else None)
    if run is None:  # a non-zero data-parallel rank
        return
    report = run.report
    extra = report.extra
    split = extra.evaluated_on
    if as_json:
        print_json(
            {
                "run": run.path,
                "report": run.path / REPORT_HTML,
                "evaluated_on": split,
                "main_metric": report.main_metric,
                "summary": report.summary,
                "baselines": report.baselines,
                "continual": extra.continual,
            }
        )
        return
    facts = [
        f"{extra.model_type}, {extra.parameters:,} parameters" if extra.parameters is not None else "",
        f"best epoch {extra.best_epoch}" if extra.best_epoch else "",
        "stopped early" if extra.stopped_early else "",
    ]
    say(f"run {run.path}" + (f" ({', '.join(f for f in facts if f)})" if any(facts) else ""))
    say(f"{split} split: {headline(report.summary)}")
    if extra.dropped_rows:
        say("dropped before splitting: " + ", ".join(f"{n} rows ({why})" for why, n in extra.dropped_rows.items()))
    if report.baselines is not None:
        say(baseline_line(report.baselines))
    if extra.continual is not None:
        say(extra.continual.summary())
    say(f"report: {run.path / REPORT_HTML}")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one plain line on stderr (a setting that cannot take effect), no source location."""
    err.print(f"[bold yellow]warning:[/] {message}", markup=True, highlight=False, soft_wrap=True)


# --- evaluate


def _job_id(run: str) -> int:
    if not run.isdigit() or int(run) < 1:
        raise UserError(f"with --remote, RUN is the id of a job on the server (a number); got {run!r}")
    return int(run)


def _evaluate_job(run: str, data: Path | None, split: str | None, cv: int | None, **_: Any) -> dict:
    if data is not None or cv is not None:
        raise UserError(
            "--data and --cv are for local runs; with --remote, evaluate a split: --split train|validation|test"
        )
    return {"job": _job_id(run), "split": split or "test"}


@app.command()
@user_errors
@remote_verb("evaluate", _evaluate_job)
def evaluate(
    run: str = typer.Argument(..., help="run folder or name (with --remote: the id of the job that made the run)"),
    data: Path | None = typer.Option(None, "--data", help="evaluate on this file instead of the run's test split"),
    split: str | None = typer.Option(None, "--split", help="train, validation or test"),
    cv: int | None = typer.Option(None, "--cv", help="k-fold cross-validation with the run's config"),
    as_json: bool = Json,
) -> None:
    """Metrics of a trained run on its test split, another file, or by k-fold cross-validation."""
    from modelworks import api
    from modelworks.evaluate.compare import compare_table
    from modelworks.evaluate.metrics import summarize

    r = api.load_run(run)
    if cv is not None:
        result = r.cross_validate(cv)
        if as_json:
            print_json(result)
            return
        folds = [*(f"fold {i + 1}" for i in range(len(result.per_fold))), "mean", "std"]
        summaries = [*result.per_fold, result.mean, result.std]
        baselines = [*(result.baselines or [None] * len(result.per_fold)), _mean_baselines(result), None]
        rows = [
            (label, {"summary": _main(s), "baselines": b})
            for label, s, b in zip(folds, summaries, baselines, strict=True)
        ]
        console.print(compare_table(rows))
        if result.dropped_rows:
            say("dropped before the folds: " + ", ".join(f"{n} rows ({why})" for why, n in result.dropped_rows.items()))
        if result.baseline_verdict:
            say(f"baselines: {result.baseline_verdict}")
        say(f"written: {r.path / CV_JSON}")
        return
    if split is not None and split not in SPLITS:
        raise UserError(f"--split must be train, validation or test; got {split!r}")
    metrics = r.evaluate(data=data, split=split)
    label = str(data) if data else (split or r.config.evaluate.split)
    if as_json:
        print_json({"run": r.path, "evaluated_on": label, "metrics": metrics})
        return
    say(f"{label}: {headline(summarize(metrics))}")
    if metrics.get("dropped_rows"):
        say("left out: " + ", ".join(f"{n} rows ({why})" for why, n in metrics["dropped_rows"].items()))


def _mean_baselines(result: CrossValidation) -> Baselines | None:
    """The mean column of a cross-validation's baseline rows: the mean best baseline and margin."""
    from modelworks.store.report import Baselines

    scored = [b for b in result.baselines if b is not None and b.margin is not None]
    if not scored:
        return None
    best = sum(b.best_value for b in scored) / len(scored)
    return Baselines(metric=scored[0].metric, best="mean", best_value=best, margin=result.baseline_margin)


def _main(summary: dict[str, float]) -> dict[str, float]:
    """The main metrics of a summary, for a table (all of them when none is a main metric)."""
    return {k: summary[k] for k in HEADLINE if k in summary} or summary


# --- predict, report, compare


@app.command()
@user_errors
def predict(
    run: str = typer.Argument(..., help="run folder or name"),
    input: Path = typer.Option(..., "--input", help="CSV / Parquet / JSONL / image folder to predict"),
    output: Path = typer.Option(..., "--output", help="CSV file to write"),
    proba: bool = typer.Option(False, "--proba", help="add one probability column per class"),
) -> None:
    """Predict with a trained run and write the predictions as CSV."""
    from modelworks import api
    from modelworks.store.atomic import atomic_write_text

    result = api.load_run(run).predict(input, proba=proba)
    atomic_write_text(output, result.to_csv(index_label="row"))
    say(f"{len(result)} predictions written to {output}")


@app.command()
@user_errors
def report(
    run: str = typer.Argument(..., help="run folder or name"),
    open_: bool = typer.Option(False, "--open", help="open the report in a browser"),
    refresh: bool = typer.Option(False, "--refresh", help="recompute it from the stored model"),
) -> None:
    """Write (with --refresh) and show the path of a run's HTML report."""
    from modelworks import api
    from modelworks.store.run import find_run

    path = find_run(run)
    html = path / REPORT_HTML
    if refresh or not html.exists():
        api.load_run(path).refresh_report()
    say(str(html))
    if open_:
        webbrowser.open(html.resolve().as_uri())


@app.command()
@user_errors
def compare(runs: list[str] = typer.Argument(..., help="two or more runs")) -> None:
    """Print runs' metrics side by side."""
    from modelworks.evaluate.compare import compare_table
    from modelworks.store.report import read_report
    from modelworks.store.run import find_run

    rows = []
    for ref in runs:
        path = find_run(ref, base_dir=Path.cwd())
        rows.append((path.name, read_report(path)))
    console.print(compare_table(rows))


# --- tune


def _tune_job(
    config: Path | None,
    trials: int | None,
    parallel: int | None,
    timeout: float | None,
    set_: list[str],
    resume: Path | None,
    study: Path | None,
    **_: Any,
) -> dict:
    if config is None or resume is not None or study is not None:
        raise UserError(
            "with --remote, give the experiment file; --resume and --study are for local studies "
            "(a job resumes its own)"
        )
    budget = [
        f"tune.{key}={value}"
        for key, value in (("trials", trials), ("parallel", parallel), ("timeout_s", timeout))
        if value is not None
    ]
    return _remote_config(config, [*set_, *budget])


@app.command()
@user_errors
@remote_verb("tune", _tune_job)
def tune(
    config: Path | None = typer.Argument(None, help="experiment YAML with a tune: section (not needed with --resume)"),
    trials: int | None = typer.Option(None, "--trials", help="total trials in the study (overrides tune.trials)"),
    parallel: int | None = typer.Option(None, "--parallel", help="trials at a time, one worker process each"),
    timeout: float | None = typer.Option(None, "--timeout", help="seconds after which no new trial starts"),
    set_: list[str] = typer.Option([], "--set", help="override a config value: KEY.PATH=VALUE"),
    resume: Path | None = typer.Option(None, "--resume", help="continue the study in this folder"),
    study: Path | None = typer.Option(None, "--study", help="use this study folder; resumes it if it holds a study"),
    top: int = typer.Option(10, "--top", help="rows in the table of best trials"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no line per finished trial"),
    as_json: bool = Json,
) -> None:
    """Search hyperparameters; writes a study folder with every trial's run, the best config and a report
    (or, with --remote, runs the search as a job on the server)."""
    from modelworks import api
    from modelworks.tuning import SearchInterrupted

    try:
        result = api.tune(
            config,
            trials=trials,
            parallel=parallel,
            timeout=timeout,
            overrides=set_,
            study=study,
            resume=resume,
            progress=not quiet,
        )
    except SearchInterrupted as e:
        err.print(f"interrupted; the search continues with: modelworks tune --resume {e.study_dir}", highlight=False)
        raise typer.Exit(130) from None
    tune_summary(result, top=top, as_json=as_json)


# --- compress


def _compress_job(run: str, method: str, set_: list[str], options: Path | None, **_: Any) -> dict:
    from modelworks.config.load import apply_overrides, read_yaml

    from_file = read_yaml(options) if options is not None else {}
    return {"job": _job_id(run), "method": method, "options": apply_overrides(from_file, list(set_))}


@app.command()
@user_errors
@remote_verb("compress", _compress_job)
def compress(
    run: str = typer.Argument(..., help="run folder or name (with --remote: the id of the job that made the run)"),
    method: str = typer.Option(..., "--method", "-m", help="quantize-dynamic, quantize-static, prune, distill or half"),
    set_: list[str] = typer.Option(
        [], "--set", help="a method option: KEY.PATH=VALUE, e.g. amount=0.5 or student.type=mlp"
    ),
    options: Path | None = typer.Option(None, "--options", help="YAML file with the method's options (--set wins)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
    as_json: bool = Json,
) -> None:
    """Compress a trained run into a new run, and compare the two (size, latency, metrics)."""
    from modelworks import api
    from modelworks.compression.measure import comparison_table
    from modelworks.config.load import read_yaml
    from modelworks.store.compression import read_compression

    from_file = read_yaml(options) if options is not None else {}
    child = api.compress(run, method, from_file, overrides=set_, progress=not (quiet or as_json))
    record = read_compression(child.path)
    baselines = child.report.baselines
    if as_json:
        print_json({"run": child.path, "compression": record, "baselines": baselines})
        return
    console.print(comparison_table(record))
    if baselines is not None:
        say(baseline_line(baselines))
    say(f"run {child.path}")


# --- export


def _export_job(run: str, format_: str, quantize: str | None, opset: int | None, output: Path | None, **_: Any) -> dict:
    if output is not None:
        raise UserError("--output is for local runs; a remote export is kept in its job's run (download it from there)")
    return {"job": _job_id(run), "format": format_, "opset": opset, "quantize": quantize}


@app.command()
@user_errors
@remote_verb("export", _export_job)
def export(
    run: str = typer.Argument(..., help="run folder or name (with --remote: the id of the job that made the run)"),
    format_: str = typer.Option(..., "--format", "-f", help="onnx, torchscript or triton (a Triton model repository)"),
    quantize: str | None = typer.Option(
        None, "--quantize", help="onnx: int8 also writes a dynamically quantized model"
    ),
    opset: int | None = typer.Option(None, "--opset", help="onnx: opset version, 17 to 20 (default 18)"),
    output: Path | None = typer.Option(None, "--output", "-o", help="folder to write (default RUN/export/FORMAT)"),
    as_json: bool = Json,
) -> None:
    """Export a trained run to ONNX, TorchScript or a Triton repository, checked against PyTorch on its test split."""
    from modelworks import api

    export_summary(api.export(run, format_, opset=opset, quantize=quantize, output=output), as_json=as_json)

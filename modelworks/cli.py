"""The `modelworks` (alias `mw`) command line: a thin layer over `modelworks.api`."""

from __future__ import annotations

import functools
import sys
import webbrowser
from importlib import resources
from pathlib import Path
from typing import Callable, List, Optional

import typer
from rich.console import Console

from modelworks.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Build deep-learning models from one YAML file.")
console = Console()
err = Console(stderr=True, soft_wrap=True)


def user_errors(fn: Callable) -> Callable:
    """Print a UserError as one clear message (no traceback) and exit with status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            err.print(f"[bold red]error:[/] {e}", markup=True, highlight=False)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted; a checkpointed run continues with: modelworks train --resume RUN")
            raise typer.Exit(130) from None

    return wrapper


def _templates() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in resources.files("modelworks.config.templates").iterdir() if p.name.endswith(".yaml"))


@app.command()
@user_errors
def init(task: str = typer.Argument(..., help="starter config: " + ", ".join(_templates()))) -> None:
    """Print a commented starter experiment file for a task."""
    if task not in _templates():
        raise UserError(f"no starter config {task!r}; choose one of: {', '.join(_templates())}")
    sys.stdout.write(resources.files("modelworks.config.templates").joinpath(f"{task}.yaml").read_text(encoding="utf-8"))


@app.command()
@user_errors
def train(
    config: Optional[Path] = typer.Argument(None, help="experiment YAML (not needed with --resume)"),
    set_: List[str] = typer.Option([], "--set", help="override a config value: KEY.PATH=VALUE"),
    resume: Optional[str] = typer.Option(None, "--resume", help="continue this run from its last checkpoint"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
) -> None:
    """Train a model; writes a run folder with weights, metrics and a report."""
    from modelworks import api

    if config is None and resume is None:
        raise UserError("give an experiment file (modelworks train exp.yaml) or --resume RUN")
    run = api.train(config, overrides=set_, resume=resume, progress=False if quiet else None)
    if run is None:  # a non-zero data-parallel rank
        return
    report = run.report
    main = report["main_metric"]
    console.print(f"run [bold]{run.path}[/]: {main['name']} {main['value']:.4f} on the {report['extra']['evaluated_on']} split")
    console.print(f"report: {run.path / 'report.html'}")


@app.command()
@user_errors
def evaluate(
    run: str = typer.Argument(..., help="run folder or name"),
    data: Optional[Path] = typer.Option(None, "--data", help="evaluate on this file instead of the run's test split"),
    split: Optional[str] = typer.Option(None, "--split", help="train, validation or test"),
    cv: Optional[int] = typer.Option(None, "--cv", help="k-fold cross-validation with the run's config"),
) -> None:
    """Metrics of a trained run on its test split, another file, or by k-fold cross-validation."""
    from modelworks import api
    from modelworks.evaluate.compare import compare_table
    from modelworks.evaluate.metrics import summarize

    r = api.load_run(run)
    if cv is not None:
        result = r.cross_validate(cv)
        rows = [(f"fold {i + 1}", {"summary": m}) for i, m in enumerate(result["per_fold"])]
        rows.append(("mean", {"summary": result["mean"]}))
        rows.append(("std", {"summary": result["std"]}))
        console.print(compare_table(rows))
        console.print(f"written: {r.path / 'cv.json'}")
        return
    if split is not None and split not in ("train", "validation", "test"):
        raise UserError(f"--split must be train, validation or test; got {split!r}")
    metrics = r.evaluate(data=data, split=split)
    label = str(data) if data else (split or r.config.evaluate.split)
    console.print(compare_table([(label, {"summary": summarize(metrics)})]))


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
    console.print(f"{len(result)} predictions written to {output}")


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
    if refresh or not (path / "report.html").exists():
        api.load_run(path).refresh_report()
    html = path / "report.html"
    console.print(str(html))
    if open_:
        webbrowser.open(html.resolve().as_uri())


@app.command()
@user_errors
def compare(runs: List[str] = typer.Argument(..., help="two or more runs")) -> None:
    """Print runs' metrics side by side."""
    from modelworks.evaluate.compare import compare_table
    from modelworks.store.run import REPORT_JSON, find_run, read_json

    rows = []
    for ref in runs:
        path = find_run(ref)
        rows.append((path.name, read_json(path / REPORT_JSON)))
    console.print(compare_table(rows))


# --- tune command (issue 3) ---

# --- compress command (issue 3) ---

# --- export command (issue 3) ---


def main() -> None:
    app()


if __name__ == "__main__":
    main()

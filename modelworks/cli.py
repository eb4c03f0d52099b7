"""The `modelworks` (alias `mw`) command line: a thin layer over `modelworks.api`."""

from __future__ import annotations

import functools
import gc
import sys
import webbrowser
from importlib import resources
from pathlib import Path
from typing import List, Optional

import typer
from modelworks.cli_output import console, err, user_errors
from modelworks.errors import UserError
from modelworks.remote_cli import RemoteProject, RemoteUrl, RemoteWait, Token, submit_and_follow

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Build deep-learning models from one YAML file.")


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
    remote: Optional[str] = RemoteUrl,
    project: Optional[str] = RemoteProject,
    token: Optional[str] = Token,
    wait: bool = RemoteWait,
) -> None:
    """Train a model; writes a run folder with weights, metrics and a report (or, with --remote, a job on the server)."""
    from modelworks import api

    if config is None and resume is None:
        raise UserError("give an experiment file (modelworks train exp.yaml) or --resume RUN")
    if remote is not None:
        if resume is not None:
            raise UserError("--resume is for local runs; a platform job resumes from its checkpoint by itself")
        submit_and_follow("train", _remote_config(config, set_), url=remote, project=project, token=token, wait=wait)
        return
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
    remote: Optional[str] = RemoteUrl,
    project: Optional[str] = RemoteProject,
    token: Optional[str] = Token,
    wait: bool = RemoteWait,
) -> None:
    """Metrics of a trained run on its test split, another file, or by k-fold cross-validation.
    With --remote, RUN is the id of a job whose run to evaluate on the server."""
    from modelworks import api
    from modelworks.evaluate.compare import compare_table
    from modelworks.evaluate.metrics import summarize

    if remote is not None:
        if data is not None or cv is not None:
            raise UserError("--data and --cv are for local runs; with --remote, evaluate a split: --split train|validation|test")
        config = {"job": _job_id(run), "split": split or "test"}
        submit_and_follow("evaluate", config, url=remote, project=project, token=token, wait=wait)
        return
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


@app.command()
@user_errors
def tune(
    config: Optional[Path] = typer.Argument(None, help="experiment YAML with a tune: section (not needed with --resume)"),
    trials: Optional[int] = typer.Option(None, "--trials", help="total trials in the study (overrides tune.trials)"),
    parallel: Optional[int] = typer.Option(None, "--parallel", help="trials at a time, one worker process each"),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="seconds after which no new trial starts"),
    set_: List[str] = typer.Option([], "--set", help="override a config value: KEY.PATH=VALUE"),
    resume: Optional[Path] = typer.Option(None, "--resume", help="continue the study in this folder"),
    study: Optional[Path] = typer.Option(None, "--study", help="use this study folder; resumes it if it holds a study"),
    top: int = typer.Option(10, "--top", help="rows in the table of best trials"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no line per finished trial"),
    remote: Optional[str] = RemoteUrl,
    project: Optional[str] = RemoteProject,
    token: Optional[str] = Token,
    wait: bool = RemoteWait,
) -> None:
    """Search hyperparameters; writes a study folder with every trial's run, the best config and a report
    (or, with --remote, runs the search as a job on the server)."""
    from rich.table import Table

    from modelworks import api
    from modelworks.tuning import SearchInterrupted

    if remote is not None:
        if config is None or resume is not None or study is not None:
            raise UserError("with --remote, give the experiment file; --resume and --study are for local studies (a job resumes its own)")
        budget = [f"tune.{key}={value}" for key, value in (("trials", trials), ("parallel", parallel), ("timeout_s", timeout)) if value is not None]
        submit_and_follow("tune", _remote_config(config, [*set_, *budget]), url=remote, project=project, token=token, wait=wait)
        return

    try:
        result = api.tune(config, trials=trials, parallel=parallel, timeout=timeout, overrides=set_,
                          study=study, resume=resume, progress=not quiet)
    except SearchInterrupted as e:
        err.print(f"interrupted; the search continues with: modelworks tune --resume {e.study_dir}", highlight=False)
        raise typer.Exit(130) from None
    frame = result.trials
    done = frame[frame["state"] == "COMPLETE"].sort_values(result.metric, ascending=result.direction == "min")
    table = Table(title=f"best trials by {result.metric} ({'higher' if result.direction == 'max' else 'lower'} is better)")
    params = [c for c in frame.columns if c not in ("number", "state", result.metric, "epochs", "duration_s", "run")]
    for column in ["trial", result.metric, *params, "epochs", "seconds"]:
        table.add_column(column, justify="left" if column in params else "right")
    for _, row in done.head(top).iterrows():
        cells = [str(row["number"]), f"{row[result.metric]:.4f}", *(_tune_cell(row[p]) for p in params),
                 _tune_cell(row["epochs"]), _tune_cell(row["duration_s"])]
        table.add_row(*cells)
    console.print(table)
    counts = frame["state"].str.lower().value_counts()
    console.print(f"{len(frame)} trial{'s' if len(frame) != 1 else ''}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    paths = {"study": result.study_dir, "best config": result.best_config, "best run": result.best_run, "report": result.report}
    for label, path in paths.items():
        if path is not None:  # whole lines, never wrapped, so that a path can be copied
            console.print(f"{label}: {path}", soft_wrap=True, highlight=False)


def _remote_config(path: Path, overrides: list[str]) -> dict:
    """The experiment file with its --set overrides applied, as sent to the server (which checks it)."""
    from modelworks.config.load import apply_overrides, read_yaml

    return apply_overrides(read_yaml(path), list(overrides))


def _job_id(run: str) -> int:
    if not run.isdigit() or int(run) < 1:
        raise UserError(f"with --remote, RUN is the id of a job on the server (a number); got {run!r}")
    return int(run)


def _tune_cell(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() and abs(value) >= 1 else f"{value:.4g}"
    return str(value)


# --- compress command (issue 3) ---


@app.command()
@user_errors
def compress(
    run: str = typer.Argument(..., help="run folder or name"),
    method: str = typer.Option(..., "--method", "-m", help="quantize-dynamic, quantize-static, prune, distill or half"),
    set_: List[str] = typer.Option([], "--set", help="a method option: KEY.PATH=VALUE, e.g. amount=0.5 or student.type=mlp"),
    options: Optional[Path] = typer.Option(None, "--options", help="YAML file with the method's options (--set wins)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
    remote: Optional[str] = RemoteUrl,
    project: Optional[str] = RemoteProject,
    token: Optional[str] = Token,
    wait: bool = RemoteWait,
) -> None:
    """Compress a trained run into a new run, and compare the two (size, latency, metrics).
    With --remote, RUN is the id of a job whose run to compress on the server."""
    from modelworks import api
    from modelworks.compression.measure import comparison_table
    from modelworks.config.load import apply_overrides, read_yaml
    from modelworks.store.compression import read_compression

    from_file = read_yaml(options) if options is not None else {}
    if remote is not None:
        config = {"job": _job_id(run), "method": method, "options": apply_overrides(from_file, list(set_))}
        submit_and_follow("compress", config, url=remote, project=project, token=token, wait=wait)
        return
    child = api.compress(run, method, from_file, overrides=set_, progress=not quiet)
    console.print(comparison_table(read_compression(child.path)))
    console.print(f"run [bold]{child.path}[/]")

# --- export command (issue 3) ---


@app.command()
@user_errors
def export(
    run: str = typer.Argument(..., help="run folder or name"),
    format_: str = typer.Option(..., "--format", "-f", help="onnx or torchscript"),
    quantize: Optional[str] = typer.Option(None, "--quantize", help="onnx: int8 also writes a dynamically quantized model"),
    opset: Optional[int] = typer.Option(None, "--opset", help="onnx: opset version, 17 to 20 (default 18)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="folder to write (default RUN/export/FORMAT)"),
    remote: Optional[str] = RemoteUrl,
    project: Optional[str] = RemoteProject,
    token: Optional[str] = Token,
    wait: bool = RemoteWait,
) -> None:
    """Export a trained run to ONNX or TorchScript, checked against PyTorch on its test split.
    With --remote, RUN is the id of a job whose run to export on the server."""
    from modelworks import api

    if remote is not None:
        if output is not None:
            raise UserError("--output is for local runs; a remote export is kept in its job's run (download it from there)")
        config = {"job": _job_id(run), "format": format_, "opset": opset, "quantize": quantize}
        submit_and_follow("export", config, url=remote, project=project, token=token, wait=wait)
        return

    result = api.export(run, format_, opset=opset, quantize=quantize, output=output)
    record = result.record
    check = record.check
    say = functools.partial(console.print, soft_wrap=True, highlight=False)
    say(f"{record.format} model: {result.file} ({_file_size(record.size_bytes)})")
    say(f"check on the {check.split} split: {check.rows} rows, max abs difference {check.max_abs_diff:.2e} "
        f"(tolerance {check.tolerance:g}): passed")
    if record.quantized is not None:
        q = record.quantized
        ratio = q.size_ratio
        size = f"{ratio:.1f}x smaller" if ratio >= 1 else f"{1 / ratio:.1f}x larger: too small a model to gain"
        change = f"{100 * q.change:+.2f} points" if q.metric == "accuracy" else f"{q.change:+.4g}"
        say(f"int8 model: {result.folder / q.file} ({_file_size(q.size_bytes)}, {size}); {q.metric} "
            f"{q.float_value:.4f} -> {q.quantized:.4f} ({change})")
    say(f"inputs, in order: {', '.join(record.inputs)}; interface: {result.folder / 'README.md'}")


def _file_size(n: int) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


# --- platform service (issue 4) ---

db_app = typer.Typer(no_args_is_help=True, help="The platform's database.")
app.add_typer(db_app, name="db")
from modelworks.remote_cli import app as remote_app  # noqa: E402

app.add_typer(remote_app, name="remote")


@app.command()
@user_errors
def up(
    host: Optional[str] = typer.Option(None, "--host", help="default 127.0.0.1 (MODELWORKS_HOST)"),
    port: Optional[int] = typer.Option(None, "--port", help="default 8000 (MODELWORKS_PORT)"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="default ~/.modelworks (MODELWORKS_HOME)"),
    workers: int = typer.Option(1, "--workers", help="local job workers started beside the server (0: none)"),
    executor: Optional[str] = typer.Option(None, "--executor", help="where the workers run jobs: local or ray (MODELWORKS_EXECUTOR)"),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Ray cluster HOST:PORT, auto or local (MODELWORKS_RAY_ADDRESS)"),
) -> None:
    """Start the platform server (and a local job worker); the first start prints the admin token."""
    import threading

    import uvicorn

    from modelworks.jobs.worker import Worker
    from modelworks.platform.bootstrap import prepare
    from modelworks.platform.settings import Settings
    from modelworks.server.main import create_app

    settings = Settings.from_env(home=data_dir, host=host, port=port, executor=executor, ray_address=ray_address)
    token = prepare(settings)
    if token is not None:
        console.print("[bold]First start:[/] the admin token below is shown only this once; keep it safe:", highlight=False)
        console.print(token, highlight=False, soft_wrap=True)
    stop = threading.Event()
    threads = [threading.Thread(target=Worker(settings).run, args=(stop,), daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    console.print(f"modelworks serving on http://{settings.host}:{settings.port} (data: {settings.home})", highlight=False)
    app = create_app(settings)
    # Everything loaded so far lives as long as the server: keep it out of the garbage collector's
    # full passes, which otherwise stall a request now and then (p99 of a large run: 200 -> 60 ms).
    gc.collect()
    gc.freeze()
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)


@app.command()
@user_errors
def worker(
    cpu_slots: int = typer.Option(1, "--cpu-slots", help="jobs run at once on the CPU"),
    gpu_slots: int = typer.Option(0, "--gpu-slots", help="GPUs this worker may hand out"),
    lease: float = typer.Option(30.0, "--lease", help="seconds without a heartbeat before a job is reclaimed"),
    poll: float = typer.Option(0.5, "--poll", help="seconds between queue polls"),
    project_limit: Optional[int] = typer.Option(None, "--project-limit", help="running jobs per project"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="default ~/.modelworks (MODELWORKS_HOME)"),
    executor: Optional[str] = typer.Option(None, "--executor", help="where jobs run: local or ray (MODELWORKS_EXECUTOR)"),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Ray cluster HOST:PORT, auto or local (MODELWORKS_RAY_ADDRESS)"),
) -> None:
    """Run jobs from the platform's queue until interrupted (SIGINT/SIGTERM put running jobs back)."""
    import signal
    import threading

    from modelworks.jobs.worker import Worker
    from modelworks.platform.settings import Settings

    limits = {"project_limit": project_limit} if project_limit is not None else {}
    settings = Settings.from_env(home=data_dir, executor=executor, ray_address=ray_address)
    job_worker = Worker(settings, cpu_slots=cpu_slots, gpu_slots=gpu_slots, lease_s=lease, poll_s=poll, **limits)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # after the Worker: connecting to Ray sets its own SIGTERM handler
        signal.signal(sig, lambda *_: stop.set())
    job_worker.run(stop)


@db_app.command("upgrade")
@user_errors
def db_upgrade(data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="default ~/.modelworks (MODELWORKS_HOME)")) -> None:
    """Apply the database migrations (the server also applies them when it starts)."""
    from modelworks.platform.db import make_engine
    from modelworks.platform.db.migrate import current_revision, upgrade
    from modelworks.platform.settings import Settings

    settings = Settings.from_env(home=data_dir)
    engine = make_engine(settings.database_url)
    try:
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
    finally:
        engine.dispose()
    was = "" if before == after else f" (was {before or 'empty'})"
    console.print(f"database at revision {after}{was}", highlight=False, soft_wrap=True)


def main() -> None:
    app()


if __name__ == "__main__":
    main()

"""``modelworks streams consume`` (a stream consumer, run beside ``modelworks up``),
``modelworks remote append`` (rows appended to a dataset over HTTP) and ``modelworks remote
request-log`` (a deployment's logging of requests for feedback).

    modelworks streams consume clicks-stream.yaml [--once] [--data-dir DIR]
    modelworks remote append DATASET rows.csv|rows.json|rows.jsonl [--public]
    modelworks remote request-log DEPLOYMENT [--on|--off] [--window-rows N] [--max-age-s S] [--dataset NAME]

The consumer's file names the project, the dataset, the author and the source (see
`modelworks.streams.sources`); it uses the server's own ``MODELWORKS_*`` settings.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path

import typer

from modelworks.cli.options import Project, Token, Url, connect, need_project
from modelworks.cli.output import Json, print_json, say, user_errors
from modelworks.errors import UserError

app = typer.Typer(no_args_is_help=True, help="Stream consumers: new labelled rows become dataset versions.")


@app.command("consume")
@user_errors
def consume(
    config: Path = typer.Argument(..., help="the consumer's YAML: project, dataset, user and source"),
    once: bool = typer.Option(False, "--once", help="store what is there now, then stop"),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="default ~/.modelworks (MODELWORKS_HOME)"),
) -> None:
    """Read a stream (a Redis consumer group, a folder) into a dataset, a version per window."""
    from modelworks.platform.settings import Settings
    from modelworks.streams.consume import consume as run
    from modelworks.streams.sources import load_stream_config

    stream = load_stream_config(config)
    settings = Settings.from_env(home=data_dir)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # the window in hand stays pending: read again at restart
    try:
        run(stream, settings, once=once, stop=stop)
    except KeyboardInterrupt:
        stop.set()


def append(
    dataset: str,
    file: Path = typer.Argument(..., help="rows: CSV with a header line, a JSON list of objects, or JSON Lines"),
    public: bool = typer.Option(False, "--public", help="store unencrypted (only for a dataset's first rows)"),
    as_json: bool = Json,
    url: str | None = Url,
    project: str | None = Project,
    token: str | None = Token,
) -> None:
    """Append the rows of FILE to DATASET: its next version holds its rows and these."""
    if not file.is_file():
        raise UserError(f"{file} is not a file")
    rows: list | Path = file
    if file.suffix.lower() in (".json", ".jsonl", ".ndjson"):
        text = file.read_text(encoding="utf-8-sig")
        try:
            if file.suffix.lower() == ".json":
                rows = json.loads(text)
            else:
                rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as e:
            raise UserError(f"{file} is not valid JSON: {e}") from None
    with connect(url, token) as client:
        version = client.append_rows(need_project(project), dataset, rows, public=public)
    if as_json:
        print_json(version)
        return
    added = version["appended"]
    after = f"after version {added['base_version']}" if added["base_version"] else "as its first rows"
    say(f"dataset {dataset} version {version['version']}: {added['rows_appended']} rows appended {after}, "
        f"{version['rows']} in all; use data.source: dataset:{dataset}@{version['version']}")  # fmt: skip


def request_log(
    deployment: str,
    enabled: bool | None = typer.Option(None, "--on/--off", help="start or stop logging (default: show the settings)"),
    window_rows: int | None = typer.Option(None, "--window-rows", help="labelled rows per appended version"),
    max_age_s: float | None = typer.Option(None, "--max-age-s", help="append once the oldest label has waited this"),
    dataset: str | None = typer.Option(None, "--dataset", help="where labelled rows go (default DEPLOYMENT-feedback)"),
    as_json: bool = Json,
    url: str | None = Url,
    project: str | None = Project,
    token: str | None = Token,
) -> None:
    """Show or change whether DEPLOYMENT logs its requests (sealed) so that feedback can label them."""
    with connect(url, token) as client:
        name = need_project(project)
        current = client.request_log(name, deployment)
        if enabled is not None or window_rows is not None or max_age_s is not None or dataset is not None:
            current = client.set_request_log(
                name, deployment, current["enabled"] if enabled is None else enabled,
                dataset=dataset or current["dataset"], window_rows=window_rows or current["window_rows"],
                max_age_s=max_age_s if max_age_s is not None else current["max_age_s"],
            )  # fmt: skip
    if as_json:
        print_json(current)
        return
    state = "logs its requests" if current["enabled"] else "does not log its requests"
    age = f" or once the oldest has waited {current['max_age_s']:g} s" if current["max_age_s"] else ""
    say(f"deployment {deployment} {state}; labelled rows go to dataset {current['dataset']}, a version per "
        f"{current['window_rows']} of them{age}; {current.get('pending', 0)} labelled rows waiting")  # fmt: skip


def add_to(remote: typer.Typer) -> None:
    """Add ``append`` and ``request-log`` to ``modelworks remote``."""
    remote.command("append")(user_errors(append))
    remote.command("request-log")(user_errors(request_log))

"""``modelworks streams consume`` (a stream consumer, run beside ``modelworks up``) and
``modelworks remote append`` (rows appended to a dataset over HTTP).

    modelworks streams consume clicks-stream.yaml [--once] [--data-dir DIR]
    modelworks remote append DATASET rows.csv|rows.json|rows.jsonl [--public]

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


def add_to(remote: typer.Typer) -> None:
    """Add ``append`` to ``modelworks remote``."""
    remote.command("append")(user_errors(append))

"""What every command-line module shares: the consoles, the one way a user error is shown, and the
two forms of output (a short summary for a person, one JSON document with ``--json``)."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from modelworks.errors import UserError

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

# The metrics a summary shows, in this order, where the task has them (every metric is in --json).
HEADLINE = ("accuracy", "f1_macro", "roc_auc", "log_loss", "rmse", "mae", "r2")

Json = typer.Option(False, "--json", help="print one JSON document (the machine-readable form) instead of a summary")


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


def say(text: str) -> None:
    """One line for a person, printed whole (never wrapped, so a path can be copied), no markup."""
    console.print(text, soft_wrap=True, highlight=False, markup=False)


def print_json(value: Any) -> None:
    """``value`` as one strict JSON document on stdout (paths as strings, non-finite numbers as null)."""
    typer.echo(json.dumps(_strict(value), indent=2, allow_nan=False))


def _strict(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "model_dump"):  # a typed artifact (pydantic)
        return _strict(value.model_dump(mode="json"))
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):  # a numpy scalar
        return _strict(value.item())
    return value


def headline(summary: dict[str, float]) -> str:
    """``accuracy 0.9333  f1_macro 0.9310  ...``: the main metrics of a summary (all of it if none is
    a main metric, e.g. a custom set)."""
    shown = [name for name in HEADLINE if summary.get(name) is not None] or sorted(summary)
    return "  ".join(f"{name} {summary[name]:.4f}" for name in shown)


def print_page(page: dict[str, Any], noun: str, line: Callable[[dict[str, Any]], str], as_json: bool) -> None:
    """An API page: with ``as_json`` the page itself, else one line per item and how many of how many."""
    if as_json:
        print_json(page)
        return
    for item in page["items"]:
        say(line(item))
    say(f"{len(page['items'])} of {page['total']} {noun}")

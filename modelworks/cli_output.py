"""What every command-line module shares: the consoles and the one way a user error is shown."""

from __future__ import annotations

import functools
from typing import Callable

import typer
from rich.console import Console

from modelworks.errors import UserError

console = Console(soft_wrap=True)
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

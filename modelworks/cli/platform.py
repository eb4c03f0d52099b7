"""The platform's verbs: ``up`` (the server and a local worker), ``worker`` (a job worker on its own),
``db upgrade`` and ``admin token`` (a way back in for an admin who lost every token)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from modelworks.cli.output import console, user_errors

if TYPE_CHECKING:
    from modelworks.platform.settings import Settings

app = typer.Typer()
db_app = typer.Typer(no_args_is_help=True, help="The platform's database.")
app.add_typer(db_app, name="db")
admin_app = typer.Typer(no_args_is_help=True, help="Run on the server's machine: recover admin access.")
app.add_typer(admin_app, name="admin")


@app.command()
@user_errors
def up(
    host: str | None = typer.Option(None, "--host", help="default 127.0.0.1 (MODELWORKS_HOST)"),
    port: int | None = typer.Option(None, "--port", help="default 8000 (MODELWORKS_PORT)"),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="default ~/.modelworks (MODELWORKS_HOME)"),
    workers: int = typer.Option(1, "--workers", help="local job workers started beside the server (0: none)"),
    executor: str | None = typer.Option(
        None, "--executor", help="where the workers run jobs: local or ray (MODELWORKS_EXECUTOR)"
    ),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="Ray cluster HOST:PORT, auto or local (MODELWORKS_RAY_ADDRESS)"
    ),
    serving: bool = typer.Option(
        True, "--serving/--no-serving", help="start the serving process for deployments (MODELWORKS_SERVING_PORT)"
    ),
) -> None:
    """Start the platform server, a local job worker and the serving process; the first start prints the admin token."""
    import threading

    import uvicorn

    from modelworks.jobs.worker import Worker
    from modelworks.platform.bootstrap import prepare
    from modelworks.platform.settings import Settings
    from modelworks.server.main import create_app

    settings = Settings.from_env(home=data_dir, host=host, port=port, executor=executor, ray_address=ray_address)
    token = prepare(settings)
    if token is not None:
        console.print(
            "[bold]First start:[/] the admin token below is shown only this once; keep it safe:", highlight=False
        )
        console.print(token, highlight=False, soft_wrap=True)
    stop = threading.Event()
    threads = [threading.Thread(target=Worker(settings).run, args=(stop,), daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    console.print(
        f"modelworks serving on http://{settings.host}:{settings.port} (data: {settings.home})", highlight=False
    )
    console.print(f"web UI: http://{settings.host}:{settings.port}/ui/ (sign in with a token)", highlight=False)
    app = create_app(settings)
    # Inference runs in a process of its own, never in this server's request threads.
    serving_process = start_serving(settings) if serving else None
    if serving_process is not None:
        where = f"http://{settings.serving_host}:{settings.serving_port}/v2"
        console.print(f"deployments answer on {where}", highlight=False)
    # Everything loaded so far lives as long as the server: keep it out of the garbage collector's
    # full passes, which otherwise stall a request now and then (p99 of a large run: 200 -> 60 ms).
    gc.collect()
    gc.freeze()
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    finally:
        if serving_process is not None:
            stop_serving(serving_process)
        stop.set()
        for t in threads:
            t.join(timeout=30)


def start_serving(settings: Settings) -> subprocess.Popen:
    """The serving process (`modelworks.serve.platform`) for ``settings``, as a process of its own."""
    env = {**os.environ, "MODELWORKS_HOME": str(settings.home), "MODELWORKS_DATABASE_URL": settings.database_url,
           "MODELWORKS_ARTIFACTS": settings.artifacts}  # fmt: skip
    command = [sys.executable, "-m", "modelworks.serve.platform", "--host", settings.serving_host,
               "--port", str(settings.serving_port)]  # fmt: skip
    return subprocess.Popen(command, env=env)


def stop_serving(process: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """SIGTERM: it stops accepting, answers what it has, flushes its counts and exits."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@app.command()
@user_errors
def worker(
    cpu_slots: int = typer.Option(1, "--cpu-slots", help="jobs run at once on the CPU"),
    gpu_slots: int = typer.Option(0, "--gpu-slots", help="GPUs this worker may hand out"),
    lease: float = typer.Option(30.0, "--lease", help="seconds without a heartbeat before a job is reclaimed"),
    poll: float = typer.Option(0.5, "--poll", help="seconds between queue polls"),
    project_limit: int | None = typer.Option(None, "--project-limit", help="running jobs per project"),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="default ~/.modelworks (MODELWORKS_HOME)"),
    executor: str | None = typer.Option(None, "--executor", help="where jobs run: local or ray (MODELWORKS_EXECUTOR)"),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="Ray cluster HOST:PORT, auto or local (MODELWORKS_RAY_ADDRESS)"
    ),
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
def db_upgrade(
    data_dir: Path | None = typer.Option(None, "--data-dir", help="default ~/.modelworks (MODELWORKS_HOME)"),
) -> None:
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


@admin_app.command("token")
@user_errors
def admin_token(
    name: str = typer.Argument(..., help="an admin's user name, e.g. admin"),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="default ~/.modelworks (MODELWORKS_HOME)"),
) -> None:
    """Issue a new token for an admin, reading the database directly (no server, no token needed).

    For an admin who lost or revoked every token; whoever can read the server's data can run it.
    The token is printed once, on standard output: it is not logged or kept anywhere."""
    from modelworks.platform.bootstrap import recovery_token
    from modelworks.platform.settings import Settings

    token = recovery_token(Settings.from_env(home=data_dir), name)
    console.print(f"a new token for {name} (shown only this once; keep it safe):", highlight=False)
    console.print(token, highlight=False, soft_wrap=True)

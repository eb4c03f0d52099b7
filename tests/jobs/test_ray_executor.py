"""The Ray executor end to end: a real Ray instance started here as an existing cluster, a real
server, a `Worker` (``executor=ray``) in a thread, real training children inside Ray actors."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from sqlalchemy import select  # noqa: E402

from modelworks.errors import UserError  # noqa: E402
from modelworks.jobs.executor import LocalExecutor  # noqa: E402
from modelworks.jobs.executors import make_executor  # noqa: E402
from modelworks.jobs.ray_executor import RayExecutor  # noqa: E402
from modelworks.jobs.worker import Worker  # noqa: E402
from modelworks.platform.bootstrap import prepare  # noqa: E402
from modelworks.platform.db import make_engine, session_factory  # noqa: E402
from modelworks.platform.db.models import Job  # noqa: E402
from modelworks.platform.settings import Settings  # noqa: E402

from ..fixtures.jobs import LONGER, TINY, finished, wait_for  # noqa: E402
from ..fixtures.platform import LiveServer, Platform, free_port  # noqa: E402


def _session_pids(sid: int) -> list[int]:
    """Every process in session ``sid``: what `ray start` started (Ray's workers make their own
    process groups, but stay in its session)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:
            pids.append(int(stat.parent.name))
    return pids


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A Ray head node started with `ray start`, as an existing cluster would be; its address.
    Stopped by killing the processes of its own session (never `ray stop`, which stops every Ray
    instance on the machine). Token authentication is off on both ends, so that a token file left
    in ~/.ray by some other Ray use cannot turn it on for one side only."""
    root = Path(tempfile.mkdtemp(prefix="mw-ray-"))  # short: Ray's unix sockets live in it
    port = free_port()
    cmd = [
        str(Path(sys.executable).parent / "ray"),
        "start",
        "--head",
        "--block",
        f"--port={port}",
        "--node-ip-address=127.0.0.1",  # every Ray service on loopback, never the machine's own address
        "--num-cpus=2",
        "--num-gpus=0",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--temp-dir={root}",
        "--object-store-memory=100000000",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--metrics-export-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
    ]
    log = root / "start.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELWORKS_", "RAY_"))}
    with open(log, "w") as out:
        head = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**env, "RAY_AUTH_MODE": "disabled"},
        )
    patch = pytest.MonkeyPatch()
    patch.setenv("RAY_AUTH_MODE", "disabled")
    patch.delenv("RAY_ADDRESS", raising=False)
    try:
        deadline = time.monotonic() + 90
        while "Ray runtime started" not in log.read_text():
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start failed:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        if ray.is_initialized():
            ray.shutdown()  # this process's connection, before its cluster goes
        for pid in _session_pids(head.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        head.wait(timeout=30)
        patch.undo()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def rp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A platform on SQLite with a CPU price, so usage has a cost."""
    home = tmp_path_factory.mktemp("ray-jobs")
    settings = Settings.from_env(
        {"MODELWORKS_PRICE_CPU_HOUR": "3.6"}, home=home, database_url=f"sqlite:///{home / 'modelworks.db'}", port=0
    )
    token = prepare(settings)
    with LiveServer(settings) as server:
        p = Platform(server=server, settings=settings, backend="sqlite", admin_token=token)
        yield p
        p.close()


@pytest.fixture(scope="module")
def ray_worker(rp: Platform, ray_cluster: str) -> Iterator[Worker]:
    """One worker for the module, choosing the ray executor by its settings, running in a thread."""
    env = {"MODELWORKS_EXECUTOR": "ray", "MODELWORKS_RAY_ADDRESS": ray_cluster, "MODELWORKS_PRICE_CPU_HOUR": "3.6"}
    settings = Settings.from_env(env, home=rp.settings.home, database_url=rp.settings.database_url, port=0)
    worker = Worker(settings, cpu_slots=2, lease_s=10.0, poll_s=0.1)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    yield worker
    stop.set()
    thread.join(timeout=60)


@pytest.fixture
def project(rp: Platform) -> str:
    name = f"p-{uuid.uuid4().hex[:6]}"
    rp.client().create_project(name)
    return name


def _running_child(rp: Platform, job_id: int, after: int | None = None) -> int:
    """The pid of the job's training child (as the worker recorded it), once it is known; with
    `after`, the pid of a later attempt's child."""
    engine = make_engine(rp.settings.database_url)

    def pid() -> int | None:
        found = session.scalar(select(Job.pid).where(Job.id == job_id).execution_options(populate_existing=True))
        return found if found != after else None

    try:
        with session_factory(engine)() as session:
            return wait_for(pid, 60, "the child's pid")
    finally:
        engine.dispose()


def _parent_command(pid: int) -> str:
    ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return Path(f"/proc/{ppid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_make_executor_errors_are_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(make_executor("local"), LocalExecutor)
    with pytest.raises(UserError, match="unknown executor 'slurm'; use 'local' or 'ray'"):
        make_executor("slurm")
    with pytest.raises(UserError, match="needs a cluster address: set MODELWORKS_RAY_ADDRESS or --ray-address"):
        make_executor("ray", None)
    with pytest.raises(UserError, match="must be HOST:PORT, ray://HOST:PORT, 'auto' or 'local'; got 'nonsense'"):
        make_executor("ray", "nonsense")
    with pytest.raises(UserError, match=f"no Ray cluster answers at 127.0.0.1:{(port := free_port())}"):
        make_executor("ray", f"127.0.0.1:{port}")
    with pytest.raises(UserError, match="invalid platform settings: executor"):
        Settings.from_env({"MODELWORKS_EXECUTOR": "slurm"})
    monkeypatch.setitem(sys.modules, "modelworks.jobs.ray_executor", None)  # as if ray were not installed
    with pytest.raises(UserError, match=r"needs the ray package .*pip install 'modelworks\[ray\]'"):
        make_executor("ray", "auto")


def test_train_job_runs_in_a_ray_actor(rp: Platform, ray_worker: Worker, project: str) -> None:
    assert isinstance(ray_worker.executor, RayExecutor)
    client = rp.client()
    job = client.submit_job(project, "train", TINY)
    done = finished(client, project, job["id"])
    assert done["state"] == "succeeded", done["error"]
    assert done["attempts"] == 1 and done["result"]["epochs"] == 3
    assert (rp.settings.work_dir / done["run_dir"] / "model.safetensors").exists()
    epochs = [m["epoch"] for m in client.job_metrics(project, job["id"], name="train_loss")["items"]]
    assert epochs == [1, 2, 3]
    logs = "\n".join(line["line"] for line in client.job_logs(project, job["id"]))
    assert "epoch 3:" in logs and "recorded run" in logs
    usage = client.usage(project)
    assert usage["cpu_seconds"] > 0 and usage["gpu_seconds"] == 0 and usage["cost"] > 0


def test_cancel_stops_the_child_in_its_actor(rp: Platform, ray_worker: Worker, project: str) -> None:
    client = rp.client()
    job = client.submit_job(project, "train", LONGER)
    pid = _running_child(rp, job["id"])
    assert "AttemptProcess" in _parent_command(pid)  # the child of a Ray actor, not of this worker
    wait_for(lambda: client.job_metrics(project, job["id"])["total"] > 0, 60, "the first metrics")
    client.cancel_job(project, job["id"])
    done = finished(client, project, job["id"])
    assert done["state"] == "cancelled" and done["attempts"] == 1
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), 10, "the child to be gone")


def test_a_lost_actor_fails_the_attempt_and_the_job_is_retried(rp: Platform, ray_worker: Worker, project: str) -> None:
    client = rp.client()
    job = client.submit_job(project, "train", LONGER, max_attempts=2)
    pid = None
    for _ in range(2):  # each attempt's actor dies: what losing its node looks like to the worker
        pid = _running_child(rp, job["id"], after=pid)
        actor = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        os.kill(actor, signal.SIGKILL)
        wait_for(lambda p=pid: not Path(f"/proc/{p}").exists(), 10, "the child to die with its actor")
    done = finished(client, project, job["id"])
    assert done["state"] == "failed" and done["attempts"] == 2
    assert "exited with status -9" in done["error"] and "Ray actor died" in done["error"]
    logs = "\n".join(line["line"] for line in client.job_logs(project, job["id"]))
    assert "requeued for another attempt" in logs


def test_a_job_failing_on_a_user_error_is_not_retried(rp: Platform, ray_worker: Worker, project: str) -> None:
    # Exit status 2 is a user error (issue 9, finding 8): another attempt would fail the same way.
    client = rp.client()
    job = client.submit_job(
        project, "train", {**TINY, "data": {**TINY["data"], "target": "no_such_column"}}, max_attempts=2
    )
    done = finished(client, project, job["id"])
    assert done["state"] == "failed" and done["attempts"] == 1
    assert "exited with status 2" in done["error"]
    logs = "\n".join(line["line"] for line in client.job_logs(project, job["id"]))
    assert "no_such_column" in logs and "requeued for another attempt" not in logs

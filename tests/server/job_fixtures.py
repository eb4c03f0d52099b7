"""What the job tests share: tiny configs, a live platform on SQLite, worker processes, and
waiting for a job. Fixtures (``jp``, ``project``, ``workers``) are imported by the test modules
that use them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from typing import Any, Callable

import pytest
from sqlalchemy import select

from modelworks.platform.bootstrap import prepare
from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.db.models import Job
from modelworks.platform.settings import Settings

from .conftest import LiveServer, Platform

TINY = {
    "data": {"source": "builtin:iris", "split": {"validation": 0.2, "test": 0.2, "seed": 1}},
    "model": {"type": "mlp", "hidden": [16]},
    "train": {"epochs": 3, "batch_size": 8, "device": "cpu", "checkpoint": {"every_steps": 5, "every_epochs": 1}},
}
# Long enough to be interrupted: a few thousand steps on digits, checkpointed every 25.
LONGER = {
    "data": {"source": "builtin:digits", "split": {"validation": 0.1, "test": 0.1, "seed": 1}},
    "model": {"type": "mlp", "hidden": [256, 256]},
    "train": {"epochs": 4, "batch_size": 4, "device": "cpu", "checkpoint": {"every_steps": 25, "every_epochs": 1}},
}


def wait_for(check: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def jp(tmp_path_factory) -> Platform:
    """A platform with prices set, on SQLite (the worker tests are about processes, not SQL)."""
    home = tmp_path_factory.mktemp("jobs")
    env = {"MODELWORKS_PRICE_CPU_HOUR": "3.6", "MODELWORKS_PRICE_GPU_HOUR": "36"}
    settings = Settings.from_env(env, home=home, database_url=f"sqlite:///{home / 'modelworks.db'}", port=0)
    token = prepare(settings)
    with LiveServer(settings) as server:
        p = Platform(server=server, settings=settings, backend="sqlite", admin_token=token)
        yield p
        p.close()


class Workers:
    """``modelworks worker`` processes against a platform; all stopped at the end."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.procs: list[subprocess.Popen] = []

    def start(self, *args: str, lease: float = 2.0) -> subprocess.Popen:
        env = dict(os.environ, MODELWORKS_DATABASE_URL=self.settings.database_url, MODELWORKS_HOME=str(self.settings.home),
                   MODELWORKS_ARTIFACTS=self.settings.artifacts)
        proc = subprocess.Popen([sys.executable, "-m", "modelworks.cli", "worker", "--lease", str(lease), "--poll", "0.1", *args],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def workers(jp):
    w = Workers(jp.settings)
    yield w
    w.stop_all()


@pytest.fixture
def project(jp) -> dict[str, Any]:
    name = f"p-{uuid.uuid4().hex[:6]}"
    jp.client().create_project(name)
    editor, editor_token = jp.new_user("editor")
    viewer, viewer_token = jp.new_user("viewer")
    jp.client().set_member(name, editor, "editor")
    jp.client().set_member(name, viewer, "viewer")
    return {"name": name, "editor": jp.client(editor_token), "viewer": jp.client(viewer_token)}


def finished(client, project: str, job_id: int, timeout: float = 90) -> dict[str, Any]:
    return wait_for(lambda: (j := client.job(project, job_id))["state"] in ("succeeded", "failed", "cancelled") and j, timeout, f"job {job_id} to finish")


def job_pid(jp, job_id: int) -> int:
    engine = make_engine(jp.settings.database_url)
    with session_factory(engine)() as session:
        pid = session.scalar(select(Job.pid).where(Job.id == job_id))
    engine.dispose()
    assert pid
    return pid

"""First start: the admin token is issued once and keeps working across restarts.

`modelworks up` runs as a user runs it, in its own process, on the embedded SQLite default;
the same first-start logic (`prepare`) is checked in-process on both databases.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from modelworks.platform.bootstrap import prepare
from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.settings import Settings
from modelworks.platform.tokens import authenticate

TOKEN = re.compile(r"mw_[0-9a-f]{16}_[A-Za-z0-9_-]+")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(home: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELWORKS_")} | {"PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "modelworks", "up", "--port", str(port), "--data-dir", str(home)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"modelworks up exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"modelworks up did not answer within 60 s:\n{log.read_text()}")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_up_prints_the_admin_token_on_the_first_start_only(tmp_path):
    home, logs = tmp_path / "home", tmp_path / "logs"
    logs.mkdir()
    proc, url = start(home, logs / "first.log")
    try:
        first = (logs / "first.log").read_text()
        tokens = TOKEN.findall(first)
        assert len(tokens) == 1, first
        token = tokens[0]
        assert "shown only this once" in first
        me = httpx.get(f"{url}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["name"] == "admin" and me.json()["is_admin"] is True
        assert f"web UI: {url}/ui/" in first  # the printed URL answers with the sign-in page
        assert "API token" in httpx.get(f"{url}/ui/", follow_redirects=True, headers={"Accept": "text/html"}).text
    finally:
        stop(proc)

    proc, url = start(home, logs / "second.log")
    try:
        second = (logs / "second.log").read_text()
        assert not TOKEN.search(second) and "shown only this once" not in second, second
        assert httpx.get(f"{url}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        stop(proc)

    assert (home / "modelworks.db").exists()
    for f in home.rglob("*"):  # nothing on disk holds the token itself
        assert f.is_dir() or token.encode() not in f.read_bytes(), f


def test_prepare_issues_the_first_admin_token_once(database):
    settings = Settings.from_env({}, home=database.home, database_url=database.url)
    token = prepare(settings)
    assert token is not None and TOKEN.fullmatch(token)
    assert prepare(settings) is None
    assert prepare(settings) is None
    engine = make_engine(database.url)
    with session_factory(engine)() as session:
        admin = authenticate(session, token)
        assert (admin.name, admin.is_admin) == ("admin", True)
    engine.dispose()

"""The platform's serving process over real HTTP on 127.0.0.1: deployments that follow an alias
(switched under load with no failed request, and back), a canary's share, inference keys (rate
limits, refusals) and metering that adds up per key, across two replicas, and after a kill -9."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

pytest.importorskip("modelworks.serve.app", reason="the serving engine (modelworks.serve) is not on this branch")

from modelworks import api  # noqa: E402
from modelworks.client import Client  # noqa: E402
from modelworks.platform.bootstrap import prepare  # noqa: E402
from modelworks.platform.db import make_engine, session_factory  # noqa: E402
from modelworks.platform.db.models import Project  # noqa: E402
from modelworks.platform.db.serving import InferenceKey, InferenceUsage
from modelworks.platform.runs import publish_run, record_run  # noqa: E402
from modelworks.platform.settings import Settings  # noqa: E402
from modelworks.platform.storage import Storage  # noqa: E402
from modelworks.serve.platform import PlatformServing  # noqa: E402
from modelworks.server import create_app  # noqa: E402
from tests.fixtures.served import Served

ROOT = Path(__file__).resolve().parents[2]
TINY = {
    "data": {"source": "builtin:iris", "split": {"validation": 0.2, "test": 0.2, "seed": 1}},
    "model": {"type": "mlp", "hidden": [8]},
    "train": {"epochs": 2, "batch_size": 16, "device": "cpu", "progress": False},
}
ROW = {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, "petal width (cm)": 0.2}
FLUSH_S = 0.5


def wait_for(check, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Any:
    """A platform (management API) with a project, a model with versions 1 and 2 (the same
    weights registered twice), alias production -> 1, deployment ``web`` following it, and a
    serving process (in this process, polling fast) answering for it. On SQLite."""
    home = tmp_path_factory.mktemp("serving")
    yield from _world(home, f"sqlite:///{home / 'modelworks.db'}")


@pytest.fixture(scope="module")
def pg_world(tmp_path_factory, pg_cluster) -> Any:
    """The same world on PostgreSQL (one lean end-to-end test; the tables and the meter have their own)."""
    name = pg_cluster.create_database()
    try:
        yield from _world(tmp_path_factory.mktemp("serving-pg"), pg_cluster.url(name))
    finally:
        pg_cluster.drop_database(name)


def _world(home: Path, database_url: str) -> Any:
    settings = Settings.from_env({}, home=home, database_url=database_url, port=0)
    admin_token = prepare(settings)
    run = api.train({**TINY, "runs_dir": str(home / "train-runs")})
    engine = make_engine(settings.database_url)
    sessions = session_factory(engine)
    with Served(create_app(settings)) as management:
        admin = Client(management.url, admin_token)
        project = f"p-{uuid.uuid4().hex[:6]}"
        admin.create_project(project)
        with sessions() as session:
            pid = session.scalar(select(Project.id).where(Project.name == project))
            key = f"{pid}/runs/tiny"
            run_row = record_run(session, pid, run.path, key, publish_run(Storage(settings.artifacts), run.path, key))
            session.commit()
            run_id = run_row.id
        admin.register_model(project, run_id, "iris")
        admin.register_model(project, run_id, "iris")
        admin.set_alias(project, "iris", "production", 1)
        admin.deploy(project, "web", "iris", alias="production", max_batch=16, max_delay_ms=2)
        serving = PlatformServing(settings, replica="test-a", poll_s=0.2, flush_s=FLUSH_S, retire_after_s=1.0)
        with Served(serving.build_app()) as server:
            key = admin.create_inference_key(project, "customer")["key"]
            world = {"settings": settings, "admin": admin, "project": project, "serving": serving, "server": server,
                     "url": server.url, "name": f"{project}.web", "key": key, "sessions": sessions, "home": home,
                     "management": management, "admin_token": admin_token, "run_id": run_id}  # fmt: skip
            wait_for(lambda: predict(world, key).status_code == 200, 120, "the deployment to answer")
            yield world
        admin.close()
    engine.dispose()


def predict(world: dict, key: str | None, name: str | None = None, url: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"instances": [ROW]}
    return httpx.post(f"{url or world['url']}/v2/models/{name or world['name']}/predict", json=body, headers=headers,
                      timeout=30)  # fmt: skip


def counted(world: dict, key_id: str) -> int:
    with world["sessions"]() as session:
        return int(
            session.scalar(select(func.sum(InferenceUsage.requests)).where(InferenceUsage.key_id == key_id)) or 0
        )


def key_id(key: str) -> str:
    return key.split("_")[1]


def test_alias_switch_and_rollback_under_load_fail_no_request(world):
    admin, project = world["admin"], world["project"]
    statuses: Counter[int] = Counter()
    versions: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {world['key']}"}) as http:
            while not stop.is_set():
                r = http.post(f"{world['url']}/v2/models/{world['name']}/predict", json={"instances": [ROW]})
                statuses[r.status_code] += 1
                if r.status_code == 200:
                    versions.append(r.json()["model_version"])

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        admin.set_alias(project, "iris", "production", 2)  # roll forward
        wait_for(lambda: versions and versions[-1] == "2", 60, "version 2 to answer")
        time.sleep(1.5)  # past the old version's retirement
        admin.set_alias(project, "iris", "production", 1)  # roll back
        wait_for(lambda: versions[-1] == "1", 60, "version 1 to answer again")
        time.sleep(1.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert set(statuses) == {200}, statuses
    assert {"1", "2"} <= set(versions) and sum(statuses.values()) > 50
    assert admin.deployment(project, "web")["current_version"] == 1


def test_a_canary_takes_its_share(world):
    admin, project = world["admin"], world["project"]
    admin.update_deployment(project, "web", canary_version=2, canary_percent=20)
    wait_for(lambda: any(predict(world, world["key"]).json()["model_version"] == "2" for _ in range(30)), 60,
             "the canary to be routed")  # fmt: skip
    try:
        with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {world['key']}"}) as http:

            def one(_: int) -> str:
                r = http.post(f"{world['url']}/v2/models/{world['name']}/predict", json={"instances": [ROW]})
                assert r.status_code == 200, r.text
                return r.json()["model_version"]

            with ThreadPoolExecutor(8) as pool:
                seen = Counter(pool.map(one, range(2000)))
    finally:
        admin.update_deployment(project, "web", canary_percent=0)
    share = 100 * seen["2"] / 2000
    assert 15 <= share <= 25, seen


def test_a_rate_limited_key_gets_429_with_retry_after(world):
    key = world["admin"].create_inference_key(world["project"], "limited", rate_limit=5)["key"]
    codes = [predict(world, key) for _ in range(8)]
    assert [r.status_code for r in codes[:5]] == [200] * 5
    refused = codes[5]
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "rate limit" in refused.json()["error"]


def test_a_key_over_its_quota_gets_429(world):
    key = world["admin"].create_inference_key(world["project"], "quota", quota=3)["key"]
    assert [predict(world, key).status_code for _ in range(3)] == [200] * 3
    r = predict(world, key)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and "quota" in r.json()["error"]


def test_unauthorized_revoked_expired_and_wrong_project_keys_are_refused(world):
    admin, project = world["admin"], world["project"]
    assert predict(world, None).status_code == 401
    assert predict(world, "mwk_0123456789abcdef_" + "x" * 43).status_code == 401
    assert predict(world, "not-a-key").status_code == 401
    # revoked: refused within the key cache's few seconds
    created = admin.create_inference_key(project, "to-revoke")
    assert predict(world, created["key"]).status_code == 200
    admin.revoke_inference_key(project, created["id"])
    wait_for(lambda: predict(world, created["key"]).status_code == 401, 10, "the revoked key to be refused")
    # expired
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    expiring = admin.create_inference_key(project, "expiring", expires_at=later)
    assert predict(world, expiring["key"]).status_code == 200
    with world["sessions"]() as session:  # time passes: the stored expiry is now behind us
        session.execute(update(InferenceKey).where(InferenceKey.id == expiring["id"]).values(
            expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))  # fmt: skip
        session.commit()
    wait_for(lambda: predict(world, expiring["key"]).status_code == 401, 10, "the expired key to be refused")
    # another project's key, and a key for other deployments of this project
    admin.create_project(f"{project}-other")
    other = admin.create_inference_key(f"{project}-other", "theirs")["key"]
    assert predict(world, other).status_code == 403
    scoped = admin.create_inference_key(project, "scoped", deployments=["elsewhere"])["key"]
    assert predict(world, scoped).status_code == 403
    # user tokens: a viewer of the project may call it, a non-member may not
    viewer = admin.create_user(f"viewer-{uuid.uuid4().hex[:6]}")
    outsider = admin.create_user(f"outsider-{uuid.uuid4().hex[:6]}")
    admin.set_member(project, viewer["user"]["name"], "viewer")
    assert predict(world, viewer["token"]["token"]).status_code == 200
    assert predict(world, outsider["token"]["token"]).status_code == 403
    assert predict(world, world["key"], name=f"{project}.nothing").status_code == 404


def test_metering_counts_every_request_per_key(world):
    admin, project = world["admin"], world["project"]
    a = admin.create_inference_key(project, "alpha")
    b = admin.create_inference_key(project, "beta")
    for _ in range(7):
        assert predict(world, a["key"]).status_code == 200
    for _ in range(4):
        assert predict(world, b["key"]).status_code == 200
    wait_for(lambda: counted(world, a["id"]) == 7 and counted(world, b["id"]) == 4, 10, "the counts to be flushed")
    rows = admin.inference_usage(project, key=a["id"])["rows"]
    assert [(r["key_name"], r["deployment"], r["requests"], r["rows"]) for r in rows] == [("alpha", "web", 7, 7)]


def test_two_replicas_on_one_database_add_up(world):
    _replicas_add_up(world)


def test_serving_end_to_end_on_postgresql(pg_world):
    """On PostgreSQL: a key answers, the alias moves the deployment to version 2 and back, a revoked
    key is refused, and two replicas' counts add up."""
    admin, project = pg_world["admin"], pg_world["project"]
    assert predict(pg_world, pg_world["key"]).json()["model_version"] == "1"
    for version in ("2", "1"):
        admin.set_alias(project, "iris", "production", int(version))
        wait_for(lambda v=version: predict(pg_world, pg_world["key"]).json()["model_version"] == v, 60, "the roll")
    revoked = admin.create_inference_key(project, "revoked")
    assert predict(pg_world, revoked["key"]).status_code == 200
    admin.revoke_inference_key(project, revoked["id"])
    wait_for(lambda: predict(pg_world, revoked["key"]).status_code == 401, 30, "the revoked key to be refused")
    _replicas_add_up(pg_world)


def _replicas_add_up(world: dict) -> None:
    admin, project = world["admin"], world["project"]
    created = admin.create_inference_key(project, "replicas")
    second = PlatformServing(world["settings"], replica="test-b", poll_s=0.2, flush_s=FLUSH_S)
    with Served(second.build_app()) as replica:
        wait_for(lambda: predict(world, created["key"], url=replica.url).status_code == 200, 120, "the second replica")
        for i in range(20):
            assert predict(world, created["key"], url=(world["url"], replica.url)[i % 2]).status_code == 200
    wait_for(lambda: counted(world, created["id"]) == 21, 10, "both replicas' counts")
    with world["sessions"]() as session:
        replicas = set(session.scalars(select(InferenceUsage.replica).where(InferenceUsage.key_id == created["id"])))
    assert replicas == {"test-a", "test-b"}


def test_usage_csv_from_the_command_line(world):
    from typer.testing import CliRunner

    from modelworks.cli import app

    admin, project = world["admin"], world["project"]
    created = admin.create_inference_key(project, "csv")
    for _ in range(3):
        predict(world, created["key"])
    wait_for(lambda: counted(world, created["id"]) == 3, 10, "the counts")
    env = {"MODELWORKS_URL": world["management"].url, "MODELWORKS_TOKEN": world["admin_token"],
           "MODELWORKS_PROJECT": project}  # fmt: skip
    out = CliRunner().invoke(app, ["remote", "usage", "--csv", "--key", created["id"]], env=env)
    assert out.exit_code == 0, out.output
    lines = out.output.strip().splitlines()
    assert lines[0].startswith("day,key_id,key_name,user,deployment,requests,rows,errors")
    assert lines[1].split(",")[1:7] == [created["id"], "csv", "", "web", "3", "3"]
    listed = CliRunner().invoke(app, ["remote", "deployments"], env=env)
    assert listed.exit_code == 0 and f"/v2/models/{project}.web" in listed.output


def test_kill_9_loses_at_most_the_flush_window(world, tmp_path):
    """The serving process as `modelworks up` starts it; killed with SIGKILL mid-traffic, the
    database holds every request answered up to one flush interval (plus a flush) before the kill."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MODELWORKS_DATABASE_URL": world["settings"].database_url}
    flush_s = 1.0
    proc = subprocess.Popen([sys.executable, "-m", "modelworks.serve.platform", "--port", str(port), "--data-dir",
                             str(world["home"]), "--flush-s", str(flush_s)], env=env, stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "serve.log", "w"))  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    created = world["admin"].create_inference_key(world["project"], "killed")
    try:
        wait_for(lambda: _answers(world, created["key"], url), 180, "the serving process")
        answered: list[float] = []
        deadline = time.monotonic() + 4
        with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {created['key']}"}) as http:
            while time.monotonic() < deadline:
                r = http.post(f"{url}/v2/models/{world['name']}/predict", json={"instances": [ROW]})
                assert r.status_code == 200
                answered.append(time.monotonic())
        killed_at = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    window = flush_s + 1.0  # one interval, plus the time a flush may take on a busy machine
    total = counted(world, created["id"])
    must_have = sum(1 for t in answered if t < killed_at - window)
    assert 0 < must_have <= total <= len(answered) + 1, (must_have, total, len(answered))  # +1: the readiness probe
    print(f"kill -9: {len(answered)} answered, {total} counted, {must_have} answered before the window")


def test_sigterm_flushes_every_count(world, tmp_path):
    """A clean stop loses nothing: the requests answered before SIGTERM are all in the database."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MODELWORKS_DATABASE_URL": world["settings"].database_url}
    command = [sys.executable, "-m", "modelworks.serve.platform", "--port", str(port), "--data-dir", str(world["home"]),
               "--flush-s", "60"]  # fmt: skip
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "serve.log", "w"))
    url = f"http://127.0.0.1:{port}"
    created = world["admin"].create_inference_key(world["project"], "terminated")
    try:
        wait_for(lambda: _answers(world, created["key"], url), 180, "the serving process")
        for _ in range(25):
            assert predict(world, created["key"], url=url).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has stopped
    finally:
        if proc.poll() is None:
            proc.kill()
    assert counted(world, created["id"]) >= 26  # 25, and the probes that found it ready


def _answers(world: dict, key: str, url: str) -> bool:
    try:
        return predict(world, key, url=url).status_code == 200
    except httpx.TransportError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_version_whose_files_changed_in_the_store_is_never_loaded(world):
    """The serving process checks every file against the registry's SHA-256 before reading it:
    weights swapped in the artifact store (here for a pickle) keep the deployment from loading."""
    import pickle

    admin, project = world["admin"], world["project"]
    version = admin.register_model(project, world["run_id"], "iris")["version"]
    with world["sessions"]() as session:
        from modelworks.platform.db.models import ModelVersion, RegisteredModel

        prefix = session.scalar(select(ModelVersion.storage_prefix).join(RegisteredModel).where(
            RegisteredModel.name == "iris", ModelVersion.version == version))  # fmt: skip
    weights = Storage(world["settings"].artifacts).local_path(f"{prefix}/model.safetensors")
    weights.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    admin.deploy(project, "tampered", "iris", version=version)
    time.sleep(2)  # several polls of the serving process
    r = predict(world, world["key"], name=f"{project}.tampered")
    assert r.status_code == 404, r.text
    assert predict(world, world["key"]).status_code == 200  # the others go on
    admin.undeploy(project, "tampered")


def test_modelworks_up_runs_the_serving_process_on_its_own(tmp_path):
    api_port, serving_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELWORKS_")}
    env |= {"PYTHONPATH": str(ROOT), "MODELWORKS_SERVING_PORT": str(serving_port)}
    with open(tmp_path / "up.log", "wb") as log:
        home = str(tmp_path / "home")
        command = [sys.executable, "-m", "modelworks", "up", "--port", str(api_port), "--data-dir", home]
        command += ["--workers", "0"]
        up = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        live = wait_for(lambda: _get(f"http://127.0.0.1:{serving_port}/v2/health/live"), 120, "the serving process")
        assert live.json() == {"live": True}
        assert _get(f"http://127.0.0.1:{api_port}/health").status_code == 200
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=60)
    assert _get(f"http://127.0.0.1:{serving_port}/v2/health/live") is None  # stopped with it
    assert f"deployments answer on http://127.0.0.1:{serving_port}/v2" in (tmp_path / "up.log").read_text()


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2)
    except httpx.TransportError:
        return None


def test_the_command_line_deploys_changes_lists_and_removes(world):
    from typer.testing import CliRunner

    from modelworks.cli import app

    project = world["project"]
    env = {"MODELWORKS_URL": world["management"].url, "MODELWORKS_TOKEN": world["admin_token"],
           "MODELWORKS_PROJECT": project}  # fmt: skip
    cli = CliRunner()

    def run(*args: str) -> str:
        out = cli.invoke(app, ["remote", *args], env=env)
        assert out.exit_code == 0, out.output
        return out.output

    assert "cli-web  iris version 1  torch bf16" in run(
        "deploy", "cli-web", "iris", "--version", "1", "--precision", "bf16"
    )
    assert "canary v2 at 30%" in run("deploy", "cli-web", "--canary-version", "2", "--canary-percent", "30")
    assert "cli-web  iris version 1, canary v2 at 30%  torch bf16" in run("deployments")
    key = run("keys", "create", "cli-customer", "--deployment", "cli-web", "--rate-limit", "100").splitlines()[-1]
    assert key.startswith("mwk_")
    wait_for(lambda: predict(world, key, name=f"{project}.cli-web").status_code == 200, 60, "cli-web to answer")
    assert predict(world, key).status_code == 403  # scoped to cli-web
    key_id = key.split("_")[1]
    assert f"{key_id}  cli-customer" in run("keys", "list")
    run("keys", "revoke", key_id)
    assert "revoked" in run("keys", "list")
    run("undeploy", "cli-web")
    wait_for(lambda: predict(world, world["key"], name=f"{project}.cli-web").status_code == 404, 10, "undeployed")
    bad = cli.invoke(app, ["remote", "deploy", "cli-web"], env=env)
    assert bad.exit_code != 0 and "give MODEL" in bad.output
    bad = cli.invoke(app, ["remote", "deploy", "onnx-bf16", "iris", "--version", "1", "--runtime", "onnx",
                           "--precision", "bf16"], env=env)  # fmt: skip
    assert bad.exit_code != 0 and "precision bf16 needs the torch runtime" in " ".join(bad.output.split())


def test_viewers_read_deployments_and_usage_editors_change_them(world):
    admin, project = world["admin"], world["project"]
    viewer = admin.create_user(f"v-{uuid.uuid4().hex[:6]}")
    editor = admin.create_user(f"e-{uuid.uuid4().hex[:6]}")
    admin.set_member(project, viewer["user"]["name"], "viewer")
    admin.set_member(project, editor["user"]["name"], "editor")
    base = f"{world['management'].url}/api/v1/projects/{project}"

    def call(token: str, method: str, path: str, **kwargs) -> int:
        return httpx.request(method, base + path, headers={"Authorization": f"Bearer {token}"}, **kwargs).status_code

    v, e = viewer["token"]["token"], editor["token"]["token"]
    body = {"name": "by-editor", "model": "iris", "version": 1}
    assert [call(v, "GET", "/deployments"), call(v, "GET", "/deployments/web"), call(v, "GET", "/inference-usage")] == [
        200
    ] * 3
    assert call(v, "POST", "/deployments", json=body) == 403
    assert call(v, "PATCH", "/deployments/web", json={"canary_percent": 5}) == 403
    assert call(v, "DELETE", "/deployments/web") == 403
    assert call(v, "POST", "/inference-keys", json={"name": "x"}) == 403
    assert call(e, "POST", "/deployments", json=body) == 201
    assert call(e, "POST", "/deployments", json=body) == 409
    assert call(e, "POST", "/deployments", json={**body, "name": "both", "alias": "production"}) == 422
    assert call(e, "POST", "/deployments", json={**body, "name": "nope", "version": 99}) == 404
    assert call(e, "POST", "/deployments", json={**body, "name": "typo", "versoin": 1}) == 422
    assert call(e, "DELETE", "/deployments/by-editor") == 204
    assert call(e, "POST", "/inference-keys", json={"name": "x", "expires_at": "2020-01-01T00:00:00Z"}) == 422

"""Runs and the model registry over real HTTP: one tiny train job run by a real worker records
the run every test here reads; copies of its folder, recorded through the same function, are
what the tampering tests damage."""

from __future__ import annotations

import hashlib
import pickle
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from modelworks.client import ApiError
from modelworks.platform.bootstrap import prepare
from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.db.models import JobMetric, ModelVersion, Project, Run
from modelworks.platform.registry import NotSafetensors, check_run_weights, materialize_version
from modelworks.platform.runs import publish_run, record_run
from modelworks.platform.settings import Settings
from modelworks.platform.storage import Storage
from modelworks.server.guard import served_routes

from ..fixtures.jobs import Workers, wait_for
from ..fixtures.platform import LiveServer, Platform

TINY = {
    "data": {"source": "builtin:iris", "split": {"validation": 0.2, "test": 0.2, "seed": 1}},
    "model": {"type": "mlp", "hidden": [8]},
    "train": {"epochs": 2, "batch_size": 16, "device": "cpu"},
}


class Payload:
    """A pickle that creates ``marker`` when unpickled: proof of whether any code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def reg(tmp_path_factory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("registry")
    settings = Settings.from_env({}, home=home, database_url=f"sqlite:///{home / 'modelworks.db'}", port=0)
    token = prepare(settings)
    with LiveServer(settings) as server:
        p = Platform(server=server, settings=settings, backend="sqlite", admin_token=token)
        name = f"p-{uuid.uuid4().hex[:6]}"
        p.client().create_project(name)
        editor, editor_token = p.new_user("editor")
        viewer, viewer_token = p.new_user("viewer")
        p.client().set_member(name, editor, "editor")
        p.client().set_member(name, viewer, "viewer")
        ed = p.client(editor_token)
        job = ed.submit_job(name, "train", TINY)
        workers = Workers(settings)
        workers.start()
        try:
            done = wait_for(
                lambda: (j := ed.job(name, job["id"]))["state"] in ("succeeded", "failed") and j, 120, "the train job"
            )
            assert done["state"] == "succeeded", done["error"]
            runs = wait_for(lambda: ed.runs(name, job=job["id"])["items"], 30, "the run to be recorded")
        finally:
            workers.stop_all()
        engine = make_engine(settings.database_url)
        yield {
            "p": p,
            "project": name,
            "editor": ed,
            "editor_name": editor,
            "viewer": p.client(viewer_token),
            "job": done,
            "run": runs[0],
            "sessions": session_factory(engine),
            "storage": Storage(settings.artifacts),
            "home": home,
        }
        engine.dispose()
        p.close()


def copy_run(reg: dict[str, Any], change=None) -> int:
    """Record a copy of the job's run folder (after ``change(folder)``) the way a job does: the copy
    is made where the (local) artifact store keeps it, then published and recorded."""
    source = reg["p"].settings.work_dir / reg["job"]["run_dir"]
    with reg["sessions"]() as session:
        project = session.scalar(select(Project).where(Project.name == reg["project"]))
        key = f"{project.id}/copies/{uuid.uuid4().hex[:8]}"
        folder = reg["storage"].local_path(key)
        shutil.copytree(source, folder)
        if change is not None:
            change(folder)
        run = record_run(session, project.id, folder, key, publish_run(reg["storage"], folder, key))
        session.commit()
        return run.id


def run_folder(reg: dict[str, Any], run_id: int) -> Path:
    with reg["sessions"]() as session:
        return Path(session.get(Run, run_id).run_dir)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- runs


def test_a_succeeded_train_job_records_its_run(reg):
    viewer, project, run_id = reg["viewer"], reg["project"], reg["run"]["id"]
    run = viewer.run(project, run_id)
    folder = reg["p"].settings.work_dir / reg["job"]["run_dir"]
    assert run["job_id"] == reg["job"]["id"]
    assert run["config"]["model"]["type"] == "mlp" and run["config"]["train"]["epochs"] == 2  # resolved params
    assert run["lineage"]["source"] == "builtin:iris"
    assert run["code_version"]["modelworks"] and "git_commit" in run["code_version"]
    assert "accuracy" in run["metrics"]
    assert [p["epoch"] for p in run["history"]["train_loss"]] == [1, 2] and run["history"]["loss"]
    files = {a["path"]: a for a in run["artifacts"]}
    assert {"config.yaml", "model.safetensors", "preprocess.json", "report.json", "environment.json"} <= set(files)
    for path, entry in files.items():
        assert entry["sha256"] == sha(folder / path) and entry["size"] == (folder / path).stat().st_size
    actions = [e["action"] for e in reg["p"].client().audit(project, limit=500)["items"]]
    assert "run.record" in actions


def test_a_long_history_is_thinned_in_the_database_and_paged_in_full(reg):
    viewer, project, run_id, job_id = reg["viewer"], reg["project"], reg["run"]["id"], reg["job"]["id"]
    with reg["sessions"]() as session:
        session.add_all(JobMetric(job_id=job_id, step=k, epoch=0, name="probe", value=float(k)) for k in range(1, 1001))
        session.commit()
    run = viewer.run(project, run_id, points=10)
    steps = [p["step"] for p in run["history"]["probe"]]
    assert run["history_points"]["probe"] == 1000
    assert steps == list(range(1, 1001, 100)) + [1000]  # every 100th, in order, and the last
    assert [p["epoch"] for p in run["history"]["train_loss"]] == [1, 2]  # short series come whole
    full = viewer.job_metrics(project, job_id, name="probe", limit=300, offset=900)
    assert full["total"] == 1000 and [p["value"] for p in full["items"]] == [float(k) for k in range(901, 1001)]
    r = reg["p"].http(reg["p"].admin_token).get(f"/api/v1/projects/{project}/runs/{run_id}", params={"points": 1})
    assert r.status_code == 422 and "points" in r.json()["error"]["message"]


def test_runs_are_paginated_and_filtered_by_job(reg):
    viewer, project = reg["viewer"], reg["project"]
    copy_run(reg)
    page = viewer.runs(project, limit=1)
    assert len(page["items"]) == 1 and page["total"] >= 2 and page["limit"] == 1
    assert [r["id"] for r in viewer.runs(project, job=reg["job"]["id"])["items"]] == [reg["run"]["id"]]
    assert viewer.runs(project, job=999_999)["items"] == []
    r = reg["p"].http(reg["p"].admin_token).get(f"/api/v1/projects/{project}/runs", params={"limit": 0})
    assert r.status_code == 422 and r.json()["error"]["message"]


def test_artifact_download_is_verified(reg, tmp_path):
    got = reg["viewer"].download_run_artifact(
        reg["project"], reg["run"]["id"], "model.safetensors", tmp_path / "w.safetensors"
    )
    assert got.read_bytes() == (reg["p"].settings.work_dir / reg["job"]["run_dir"] / "model.safetensors").read_bytes()


def test_a_changed_artifact_is_never_served(reg):
    run_id = copy_run(reg)
    http = reg["p"].http(reg["p"].admin_token)
    folder = run_folder(reg, run_id)
    (folder / "report.json").write_text('{"metrics": {"accuracy": 1.0}}')
    r = http.get(f"/api/v1/projects/{reg['project']}/runs/{run_id}/artifacts/report.json")
    assert r.status_code == 500 and "artifact changed" in r.json()["error"]["message"] and "accuracy" not in r.text
    # and the changed run cannot be registered either: the registry copies only what was recorded
    r = http.post(f"/api/v1/projects/{reg['project']}/models/changed/versions", json={"run_id": run_id})
    assert r.status_code == 500 and "artifact changed" in r.json()["error"]["message"]
    assert "changed" not in [m["name"] for m in reg["editor"].models(reg["project"])["items"]]


TRAVERSALS = [
    "..%2F..%2Fetc%2Fpasswd",
    "%2E%2E/%2E%2E/modelworks.db",
    "%2Fetc%2Fpasswd",
    "a/%2E%2E/config.yaml",
    "%252E%252E%252Fconfig.yaml",
    "C:%5Cwindows",
    "config.yaml%00",
]


def test_traversal_in_path_parameters_is_refused(reg):
    http, project, run_id = reg["p"].http(reg["p"].admin_token), reg["project"], reg["run"]["id"]
    reg["editor"].register_model(project, run_id, "trav")
    before = sorted(p.name for p in reg["home"].iterdir())
    for bad in TRAVERSALS:
        for url in (
            f"/api/v1/projects/{project}/runs/{run_id}/artifacts/{bad}",
            f"/api/v1/projects/{project}/models/trav/versions/1/artifacts/{bad}",
        ):
            r = http.get(url)
            assert r.status_code in (400, 404), f"{url}: {r.status_code} {r.text}"
            assert r.json()["error"]["message"] and "root:" not in r.text
    for bad in ("..%2Fx", "%2E%2E", "UPPER", "a%2Fb", "x%00"):
        for method, url, body in (
            ("GET", f"/api/v1/projects/{project}/models/{bad}", None),
            ("POST", f"/api/v1/projects/{project}/models/{bad}/versions", {"run_id": run_id}),
            ("PUT", f"/api/v1/projects/{project}/models/trav/aliases/{bad}", {"version": 1}),
            ("GET", f"/api/v1/projects/{project}/models/trav/aliases/{bad}", None),
        ):
            r = http.request(method, url, json=body)
            assert r.status_code in (400, 404, 422), f"{method} {url}: {r.status_code} {r.text}"
    assert sorted(p.name for p in reg["home"].iterdir()) == before
    assert [m["name"] for m in reg["editor"].models(project)["items"]] == ["trav"]


# --- the registry


def test_register_versions_and_they_never_change(reg, tmp_path):
    ed, project = reg["editor"], reg["project"]
    run_id = copy_run(reg)
    v1 = ed.register_model(project, run_id, "iris")
    v2 = ed.register_model(project, run_id, "iris")
    assert (v1["version"], v2["version"]) == (1, 2) and v1["created_by"] == reg["editor_name"]
    weights = next(a for a in v1["artifacts"] if a["path"] == "model.safetensors")
    # no route can change a version
    paths = {(m, r.path) for r in served_routes(reg["p"].app) for m in r.methods}
    assert not [(m, p) for m, p in paths if "/versions/{version}" in p and m not in ("GET", "HEAD")]
    http = reg["p"].http(reg["p"].admin_token)
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        assert (
            http.request(
                method, f"/api/v1/projects/{project}/models/iris/versions/1", json={"run_id": run_id}
            ).status_code
            == 405
        )
    # changing the run folder afterwards does not reach the registered files
    folder = run_folder(reg, run_id)
    original = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(original[:-4] + b"\0\0\0\1")
    got = ed.download_model_artifact(project, "iris", 1, "model.safetensors", tmp_path / "m.safetensors")
    assert got.read_bytes() == original and sha(got) == weights["sha256"]
    assert ed.model_version(project, "iris", 1)["artifacts"] == v1["artifacts"]
    # a registered version loads through the engine, from safetensors
    from modelworks.api import load_run

    with reg["sessions"]() as session:
        row = session.scalar(select(ModelVersion).where(ModelVersion.version == 1, ModelVersion.run_id == run_id))
        loaded = load_run(materialize_version(reg["storage"], row, tmp_path / "v1"), device="cpu")
    assert loaded.model is not None


def test_aliases_move_and_every_change_is_audited(reg):
    ed, viewer, project = reg["editor"], reg["viewer"], reg["project"]
    run_id = reg["run"]["id"]
    ed.register_model(project, run_id, "aliased")
    ed.register_model(project, run_id, "aliased")
    assert ed.set_alias(project, "aliased", "staging", 1)["version"] == 1
    assert viewer.alias(project, "aliased", "staging")["version"] == 1
    moved = ed.set_alias(project, "aliased", "staging", 2)
    assert moved["version"] == 2 and moved["updated_by"] == reg["editor_name"]
    ed.set_alias(project, "aliased", "production", 1)
    detail = viewer.model(project, "aliased")
    assert [v["version"] for v in detail["versions"]] == [1, 2]
    assert {a["alias"]: a["version"] for a in detail["aliases"]} == {"production": 1, "staging": 2}
    ed.delete_alias(project, "aliased", "staging")
    with pytest.raises(ApiError) as e:
        viewer.alias(project, "aliased", "staging")
    assert e.value.status == 404
    with pytest.raises(ApiError) as e:
        ed.set_alias(project, "aliased", "staging", 9)
    assert e.value.status == 404 and "no version 9" in str(e.value)
    entries = [
        e for e in reg["p"].client().audit(project, limit=500)["items"] if e["target"].startswith("model:aliased")
    ]
    got = [(e["action"], e["actor"], e["detail"].get("version")) for e in reversed(entries)]
    assert got == [
        ("model.version.create", reg["editor_name"], 1),
        ("model.version.create", reg["editor_name"], 2),
        ("model.alias.set", reg["editor_name"], 1),
        ("model.alias.set", reg["editor_name"], 2),
        ("model.alias.set", reg["editor_name"], 1),
        ("model.alias.delete", reg["editor_name"], 2),
    ]
    assert all(e["at"] for e in entries)
    assert entries[-4]["detail"]["from"] == 1  # the move from 1 to 2 says where it came from


def test_a_viewer_reads_but_cannot_register_or_move_aliases(reg):
    viewer, project, run_id = reg["viewer"], reg["project"], reg["run"]["id"]
    reg["editor"].register_model(project, run_id, "guarded")
    assert viewer.models(project)["total"] >= 1 and viewer.model_version(project, "guarded", 1)["version"] == 1
    for call in (
        lambda: viewer.register_model(project, run_id, "guarded"),
        lambda: viewer.set_alias(project, "guarded", "production", 1),
        lambda: viewer.delete_alias(project, "guarded", "production"),
    ):
        with pytest.raises(ApiError) as e:
            call()
        assert e.value.status == 403
    assert [v["version"] for v in viewer.model(project, "guarded")["versions"]] == [1]
    assert viewer.model(project, "guarded")["aliases"] == []


# --- a pickle smuggled as weights


def test_a_pickle_smuggled_as_weights_is_refused_and_no_code_runs(reg, tmp_path):
    ed, project = reg["editor"], reg["project"]
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(Payload(probe)))  # the payload is real: unpickling it makes its marker
    assert probe.exists()
    marker = tmp_path / "pwned"
    smuggled = pickle.dumps(Payload(marker))

    run_id = copy_run(reg, lambda folder: (folder / "model.safetensors").write_bytes(smuggled))
    with pytest.raises(ApiError) as e:
        ed.register_model(project, run_id, "smuggled")
    assert e.value.status == 422 and "not a safetensors file" in str(e.value)
    assert "smuggled" not in [m["name"] for m in ed.models(project)["items"]]
    folder = run_folder(reg, run_id)
    with pytest.raises(NotSafetensors):
        check_run_weights(folder / "model.safetensors")
    from safetensors import SafetensorError

    from modelworks.api import load_run

    with pytest.raises(SafetensorError):  # the engine reads weights with safetensors only
        load_run(folder, device="cpu")

    # a pickle put in place of a registered version's weights: refused on read and on load
    good = ed.register_model(project, reg["run"]["id"], "swapped")
    with reg["sessions"]() as session:
        row = session.scalar(
            select(ModelVersion).where(ModelVersion.version == good["version"], ModelVersion.model.has(name="swapped"))
        )
        with reg["storage"].open(f"{row.storage_prefix}/model.safetensors", "wb") as f:
            f.write(smuggled)
        with pytest.raises(Exception, match="artifact changed"):
            materialize_version(reg["storage"], row, tmp_path / "swapped")
        assert not (tmp_path / "swapped").exists()
    r = (
        reg["p"]
        .http(reg["p"].admin_token)
        .get(f"/api/v1/projects/{project}/models/swapped/versions/1/artifacts/model.safetensors")
    )
    assert r.status_code == 500 and "artifact changed" in r.json()["error"]["message"]
    assert not marker.exists()


# --- the CLI


def test_remote_cli_verbs(reg, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from modelworks.cli import app

    p, project, run_id = reg["p"], reg["project"], reg["run"]["id"]
    monkeypatch.delenv("MODELWORKS_URL", raising=False)
    token = p.admin_token
    cli = CliRunner()
    common = ["--url", p.url, "--project", project, "--token", token]
    out = cli.invoke(app, ["remote", "runs", *common])
    assert out.exit_code == 0 and f"run {run_id}" in out.stdout
    env = {"MODELWORKS_URL": p.url, "MODELWORKS_PROJECT": project, "MODELWORKS_TOKEN": token}
    out = cli.invoke(app, ["remote", "register", str(run_id), "cli-model"], env=env)
    assert out.exit_code == 0 and "model cli-model version 1" in out.stdout
    out = cli.invoke(app, ["remote", "alias", "cli-model", "production", "1", *common])
    assert out.exit_code == 0 and "production -> version 1" in out.stdout
    assert reg["viewer"].alias(project, "cli-model", "production")["version"] == 1
    out = cli.invoke(app, ["remote", "alias", "cli-model", "production", "7", *common])
    assert out.exit_code == 2 and "no version 7" in out.output
    bad = tmp_path / "exp.yaml"
    bad.write_text("data: {source: /etc/passwd}\nmodel: {type: mlp}\n")
    out = cli.invoke(app, ["remote", "submit", str(bad), *common])
    assert out.exit_code == 2 and "builtin:NAME or dataset:NAME@VERSION" in out.output
    good = tmp_path / "good.yaml"
    good.write_text("data: {source: 'builtin:iris'}\nmodel: {type: mlp}\ntrain: {epochs: 1, device: cpu}\n")
    out = cli.invoke(app, ["remote", "submit", str(good), *common])
    assert out.exit_code == 0 and "queued" in out.stdout, out.output


def test_a_run_recorded_before_the_artifact_store_is_read_from_its_folder(reg, tmp_path):
    """Runs recorded before revision 0005 have no storage prefix: they are read, checked, from run_dir."""
    run_id = copy_run(reg)
    with reg["sessions"]() as session:
        session.get(Run, run_id).storage_prefix = None
        session.commit()
    got = reg["viewer"].download_run_artifact(reg["project"], run_id, "config.yaml", tmp_path / "config.yaml")
    assert got.read_bytes() == (run_folder(reg, run_id) / "config.yaml").read_bytes()
    assert reg["editor"].register_model(reg["project"], run_id, "legacy")["version"] == 1

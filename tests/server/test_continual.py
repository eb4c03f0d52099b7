"""Continual policies on a live server: who may make them, when they queue a continuation, and
(slow) a drift on the live error stream triggering one end to end through a worker."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

import modelworks.api  # (the live server checks jobs through it: imported before any request waits on it)
from modelworks.cli import app as cli
from modelworks.client import ApiError
from modelworks.jobs.policies import run_policies
from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.db.models import Project
from modelworks.platform.runs import publish_run, record_run
from modelworks.platform.storage import Storage

from ..fixtures.jobs import wait_for
from ..jobs.continual_data import base_config, csv, new_rows, old_rows

OLD = old_rows(240, 1)


def _registered(jp, client, project: str, tmp_path) -> None:
    """Dataset ``stream`` version 1, and model ``clf`` version 1 (trained here on it, recorded and
    registered through the platform) as ``production``."""
    client.upload_dataset(project, "stream", csv(OLD), filename="stream.csv")
    (tmp_path / "stream.csv").write_bytes(csv(OLD))
    config = base_config("stream")
    config["data"]["source"] = str(tmp_path / "stream.csv")
    config["train"].update(epochs=8, progress=False)
    run = modelworks.api.train({**config, "runs_dir": str(tmp_path / "runs")}, base_dir=tmp_path)
    engine = make_engine(jp.settings.database_url)
    with session_factory(engine)() as session:
        project_id = session.scalar(select(Project.id).where(Project.name == project))
        key = f"{project_id}/uploads/{uuid.uuid4().hex[:8]}"
        artifacts = publish_run(Storage(jp.settings.artifacts), run.path, key)
        row = record_run(session, project_id, run.path, key, artifacts, source="dataset:stream@1")
        session.commit()
        run_id = row.id
    engine.dispose()
    client.register_model(project, run_id, "clf")
    client.set_alias(project, "clf", "production", 1)


def _check(jp) -> list[int]:
    """One look at the policies, as a worker's loop makes it."""
    engine = make_engine(jp.settings.database_url)
    with session_factory(engine)() as session:
        queued = run_policies(session, jp.settings)
    engine.dispose()
    return queued


def test_continual_policy_on_another_projects_model_is_403(jp, tmp_path):
    admin = jp.client()
    mine, theirs = f"a-{uuid.uuid4().hex[:6]}", f"b-{uuid.uuid4().hex[:6]}"
    admin.create_project(mine)
    admin.create_project(theirs)
    ada, ada_token = jp.new_user("ada")
    admin.set_member(mine, ada, "editor")
    admin.set_member(theirs, ada, "viewer")
    _registered(jp, admin, theirs, tmp_path)
    client = jp.client(ada_token)
    with pytest.raises(ApiError) as e:
        client.create_policy(theirs, "watch", "clf", "stream")
    assert e.value.status == 403 and "editor" in str(e.value)
    with pytest.raises(ApiError) as e:  # in her own project, their model does not exist
        client.create_policy(mine, "watch", "clf", "stream")
    assert e.value.status == 404 and "clf" in str(e.value)
    _, stranger = jp.new_user("stranger")
    with pytest.raises(ApiError) as e:
        jp.client(stranger).policies(theirs)
    assert e.value.status == 404
    assert client.policies(theirs)["total"] == 0 and client.windows(theirs)["total"] == 0  # viewers read


def test_continual_policy_queues_once_n_new_rows_have_arrived(jp, project, tmp_path):
    name, (ed, token) = project["name"], jp.new_user("ed")
    jp.client().set_member(name, ed, "editor")
    editor = jp.client(token)
    _registered(jp, editor, name, tmp_path)
    remote = ["--url", jp.url, "--token", token, "--project", name]
    typo = CliRunner().invoke(cli, ["remote", "policies", "create", "watch", "clf", "--dataset", "stream",
                                    "--set", "epochz=3", *remote])  # fmt: skip
    assert typo.exit_code == 2 and "epochz" in typo.output and "HTTP 422" in typo.output
    made = CliRunner().invoke(cli, ["remote", "policies", "create", "watch", "clf", "--dataset", "stream",
                                    "--min-rows", "100", *remote])  # fmt: skip
    assert made.exit_code == 0 and "clf@production on dataset stream every 100 new rows" in made.output, made.output
    policy = editor.policy(name, "watch")
    assert (policy["last_version"], policy["last_rows"], policy["trigger"]) == (1, 240, "rows")

    editor.upload_dataset(name, "stream", csv(OLD, new_rows(50, 2)), filename="stream.csv")  # 50 new rows
    assert _check(jp) == []
    editor.upload_dataset(name, "stream", csv(OLD, new_rows(50, 2), new_rows(80, 3)), filename="stream.csv")
    (job_id,) = _check(jp)  # 130 new rows since version 1
    job = editor.job(name, job_id)
    assert job["kind"] == "continue" and job["state"] == "queued"
    assert {k: job["config"][k] for k in ("model", "data", "window_start", "train_on")} == {
        "model": "clf@production", "data": "dataset:stream@3", "window_start": 240, "train_on": "always"
    }  # fmt: skip
    assert _check(jp) == []  # one continuation in flight at a time
    assert editor.policy(name, "watch")["pending_job_id"] == job_id

    editor.cancel_job(name, job_id)
    assert _check(jp) == []  # settles the ended job: a failed window says why
    (window,) = editor.windows(name, policy="watch")["items"]
    assert window["outcome"] == "failed" and "cancelled" in window["error"] and window["job_id"] == job_id
    assert editor.policy(name, "watch")["pending_job_id"] is None
    shown = CliRunner().invoke(cli, ["remote", "policies", "history", "watch", *remote])
    assert shown.exit_code == 0 and "dataset:stream@3 rows 240+0" in shown.output and "failed" in shown.output
    editor.set_policy_enabled(name, "watch", False)
    editor.upload_dataset(name, "stream", csv(OLD, new_rows(300, 4)), filename="stream.csv")
    assert _check(jp) == []  # paused


@pytest.mark.slow
def test_continual_policy_drift_triggers_a_continuation_that_is_promoted(jp, project, workers, tmp_path, monkeypatch):
    editor, name = project["editor"], project["name"]
    _registered(jp, editor, name, tmp_path)
    editor.create_policy(name, "drift-watch", "clf", "stream", trigger="drift", train={"epochs": 20})
    editor.upload_dataset(name, "stream", csv(OLD, new_rows(160, 2)), filename="stream.csv")
    monkeypatch.setenv("MODELWORKS_POLICY_CHECK_S", "0.5")
    workers.start()
    windows = wait_for(lambda: editor.windows(name, policy="drift-watch")["items"], 400, "the policy's window")
    (window,) = windows
    assert window["outcome"] == "promoted", window
    assert window["drift"] and window["prequential"] < 0.2 and window["rows"] == 160
    assert window["decision"]["passed"] and window["candidate_version"] == 2
    assert editor.alias(name, "clf", "production")["version"] == 2

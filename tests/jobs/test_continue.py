"""The continue job end to end: a real server and worker, a registered model continued on new
dataset versions, registered as a new version each time, the alias moved only when the gate passes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

import modelworks.api  # noqa: F401  (the live server checks jobs through it: imported before any request waits on it)
from modelworks.client import ApiError
from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.db.continual import ContinualWindow
from modelworks.platform.db.models import AuditLog, Run

from ..fixtures.jobs import finished
from .continual_data import base_config, csv, new_rows, old_rows


def _succeeded(client, project: str, job_id: int) -> dict:
    done = finished(client, project, job_id, timeout=240)
    log = "\n".join(line["line"] for line in client.job_logs(project, job_id)[-40:])
    assert done["state"] == "succeeded", f"{done['error']}\n{log}"
    return done


def _windows(jp) -> list[ContinualWindow]:
    engine = make_engine(jp.settings.database_url)
    with session_factory(engine)() as session:
        rows = list(session.scalars(select(ContinualWindow).order_by(ContinualWindow.id)))
        audits = list(session.scalars(select(AuditLog.detail).where(AuditLog.action == "model.gate")))
        lineage = {r.job_id: r.lineage for r in session.scalars(select(Run))}
    engine.dispose()
    return rows, audits, lineage


def test_continue_promotes_a_better_candidate_and_keeps_a_rejected_one_without_the_alias(jp, project, workers):
    editor, name = project["editor"], project["name"]
    editor.upload_dataset(name, "clicks", csv(old_rows(240, 1)), filename="clicks.csv")
    editor.upload_dataset(name, "clicks", csv(old_rows(240, 1), new_rows(160, 2)), filename="clicks.csv")
    editor.upload_dataset(name, "clicks", csv(old_rows(240, 3)), filename="clicks.csv")  # more of the old world
    workers.start()
    base = finished(editor, name, editor.submit_job(name, "train", base_config("clicks"))["id"])
    assert base["state"] == "succeeded", base["error"]
    run_id = editor.runs(name, job=base["id"])["items"][0]["id"]
    editor.register_model(name, run_id, "clf")
    editor.set_alias(name, "clf", "production", 1)

    with pytest.raises(ApiError) as e:  # checked before it is queued
        editor.submit_job(name, "continue", {"model": "clf@staging", "data": "dataset:clicks@2"})
    assert e.value.status == 422 and "config: model" in str(e.value) and "staging" in str(e.value)

    # The shifted window: the current version gets every channel-b row wrong; the candidate learns them.
    job = editor.submit_job(name, "continue", {"model": "clf@production", "data": "dataset:clicks@2",
                                               "window_start": 240, "train": {"epochs": 20}})  # fmt: skip
    done = _succeeded(editor, name, job["id"])
    result = done["result"]
    assert result["prequential"] < 0.2  # tested before training: the new rows are nearly all wrong
    assert result["drift"] is True
    assert result["candidate_version"] == 2 and result["promoted"] is True, result["decision"]["reasons"]
    assert result["decision"]["new"]["gain"] > 0.2 and result["decision"]["new"]["test"]["p_value"] < 0.05
    assert editor.alias(name, "clf", "production")["version"] == 2

    # More of the old world: nothing to gain, so the candidate is registered but not promoted.
    job = editor.submit_job(name, "continue", {"model": "clf@production", "data": "dataset:clicks@3"})
    done = _succeeded(editor, name, job["id"])
    assert done["result"]["candidate_version"] == 3 and done["result"]["promoted"] is False
    assert not done["result"]["decision"]["checks"]["significant"]
    assert [v["version"] for v in editor.model(name, "clf")["versions"]] == [1, 2, 3]
    assert editor.alias(name, "clf", "production")["version"] == 2

    windows, audits, lineage = _windows(jp)
    mine = [w for w in windows if w.model == "clf" and w.dataset.startswith("dataset:clicks")][-2:]
    outcomes = [(w.parent_version, w.candidate_version, w.outcome) for w in mine]
    assert outcomes == [(1, 2, "promoted"), (2, 3, "rejected")]
    assert mine[0].decision["passed"] and not mine[1].decision["passed"]
    assert [a["outcome"] for a in audits[-2:]] == ["promoted", "rejected"]
    assert lineage[job["id"]]["parent_version"] == 2 and lineage[job["id"]]["version"] == 3

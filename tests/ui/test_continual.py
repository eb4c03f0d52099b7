"""A continual policy's history in the browser: its windows with the gate's numbers, promoted and
rejected, linked to the candidate's run and the job; an editor pauses it, a viewer (here in
Chinese) only reads. The windows are written by the platform function a continue job calls
(`record_window`), with decisions from the real gate (`decide`), so no continuation has to run."""

from __future__ import annotations

import re

import numpy as np
from sqlalchemy import select

from modelworks.evaluate.gate import Holdout, decide
from modelworks.evaluate.gate_config import GateConfig
from modelworks.platform import continual
from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.db.models import Project

CSV = b"x,label\n" + b"".join(f"{i},{'ab'[i % 2]}\n".encode() for i in range(40))


def _decision(new_right: int, old_drop: int) -> dict:
    """A real gate decision on 100 new and 100 old rows: the candidate gets ``new_right`` more new rows
    right than the current version, and ``old_drop`` fewer old rows."""
    y = np.zeros(100, dtype=int)
    current = np.r_[np.zeros(60, dtype=int), np.ones(40, dtype=int)]  # 60 right
    candidate = current.copy()
    candidate[60 : 60 + new_right] = 0
    old_candidate = np.r_[np.ones(old_drop, dtype=int), np.zeros(100 - old_drop, dtype=int)]
    gate = GateConfig(delta=0.05, epsilon=0.02)
    old = Holdout(y, old_candidate, np.zeros(100, dtype=int))
    return decide(
        "binary", gate, Holdout(y, candidate, current), old, {"majority": np.ones(100, dtype=int)}
    ).model_dump(mode="json")


def _windows(ui, project: str, policy: str, run_job: int) -> None:
    """Two windows, as continue jobs record them: v2 promoted (gain +0.20, old holdout unchanged),
    v3 rejected (gain +0.20 but the old holdout drops 0.10 > ε)."""
    engine = make_engine(ui.settings.database_url)
    with session_factory(engine)() as session:
        project_id = session.scalar(select(Project.id).where(Project.name == project))
        policy_id = continual.get_policy(session, session.get(Project, project_id), policy).id
        common = {"policy_id": policy_id, "errors": None, "actor": None, "model": "iris-cl", "alias": "production",
                  "parent_version": 1, "rows": 40, "metric": "accuracy", "drift": False, "drift_rows": []}  # fmt: skip
        continual.record_window(session, project_id, **common, job_id=run_job, dataset="dataset:clicks@2",
                                prequential=0.61, outcome="promoted", candidate_version=2,
                                decision=_decision(20, 0))  # fmt: skip
        continual.record_window(session, project_id, **common, job_id=None, dataset="dataset:clicks@3",
                                window_start=40, prequential=0.55, outcome="rejected", candidate_version=3,
                                decision=_decision(20, 10))  # fmt: skip
        session.commit()
    engine.dispose()


def test_policy_history_pause_and_a_read_only_chinese_view(ui, world, trained_job, signed_in, shot, axe_check):
    project, admin = world["project"], ui.client()
    run = trained_job["run"]["id"]
    for _ in range(3):  # v1 (production), then two candidates
        admin.register_model(project, run, "iris-cl")
    admin.set_alias(project, "iris-cl", "production", 1)
    admin.upload_dataset(project, "clicks", CSV, filename="clicks.csv")
    admin.create_policy(project, "watch", "iris-cl", "clicks", min_rows=30)
    _windows(ui, project, "watch", trained_job["job"]["id"])

    page = signed_in(world["editor"]["token"])
    page.goto(f"/ui/p/{project}/models/iris-cl")
    page.click("#model-policies a")  # the model page links its policy
    page.wait_for_url(re.compile(r"/continual/watch$"))
    rows = page.locator("#windows tbody tr")
    assert rows.count() == 2
    rejected, promoted = rows.nth(0), rows.nth(1)  # newest first
    assert "rejected" in rejected.inner_text() and "promoted" in promoted.inner_text()
    assert (
        "+0.2000" in promoted.locator("td.gain").inner_text() and "δ 0.05" in promoted.locator("td.gain").inner_text()
    )
    assert "9.537e-07" in promoted.locator("td.p-value").inner_text()  # exact McNemar: 20 rows to 0, 0.5**20
    drop = rejected.locator("td.drop").inner_text()
    assert "+0.1000" in drop and "ε 0.02" in drop and "✗" in drop  # beyond the forgetting budget
    assert "40 new rows (at least 30)" in promoted.inner_text()  # why the window ran
    assert promoted.locator(f"a[href$='/runs/{run}']").count() == 1  # the candidate's run
    assert promoted.locator(f"a[href$='/jobs/{trained_job['job']['id']}']").count() == 1
    axe_check(page)
    shot(page, "continual-policy")

    page.click("#pause")
    page.wait_for_selector("#resume")
    assert admin.policy(project, "watch")["enabled"] is False  # the API sees the same policy
    page.goto(f"/ui/p/{project}/continual")
    assert "paused" in page.inner_text("#policies") and "rejected" in page.inner_text("#policies")

    viewer = signed_in(world["viewer"]["token"], locale="zh-CN")
    viewer.goto(f"/ui/p/{project}/continual/watch")
    assert viewer.inner_text("h2") == "历史" and "已拒绝" in viewer.inner_text("#windows")
    assert viewer.locator("#pause, #resume").count() == 0
    csrf = viewer.get_attribute("meta[name=csrf-token]", "content")
    refused = viewer.context.request.post(f"/ui/p/{project}/continual/watch/resume", form={"csrf_token": csrf})
    assert refused.status == 403 and "editor" in refused.text()
    missing = viewer.context.request.get(f"/ui/p/{project}/continual/nope")
    assert missing.status == 404 and f"no policy named 'nope' in project '{project}'" in missing.text()
    shot(viewer, "continual-policy-zh")

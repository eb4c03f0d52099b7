"""Continual policies, run from the worker's loop: every ``policy_check_s`` seconds a worker queues
the continue job of each policy whose trigger fired (`modelworks.platform.continual.due`).

Two workers may look at the same moment: each window is claimed by one conditional update, so it
is queued once. A policy has at most one job in flight; when it ends, `continual.settle` clears it
(and records a window for a job that failed before writing its own). The job acts as the user who
created the policy, with that user's current access: a policy whose creator lost the editor role
(or was deleted) queues nothing and records why.

The same clock closes serving's feedback windows that have waited their ``max_age_s``
(`close_feedback_windows`), so that a deployment with few labels still feeds its policy.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from modelworks.errors import UserError
from modelworks.jobs import queue
from modelworks.platform import continual
from modelworks.platform.access import role_in
from modelworks.platform.datasets import DataStore
from modelworks.platform.db.continual import ContinualPolicy, ContinualWindow
from modelworks.platform.db.models import Project
from modelworks.platform.roles import Role
from modelworks.platform.settings import Settings
from modelworks.streams import feedback


def run_policies(session: Session, settings: Settings) -> list[int]:
    """Queue the continue jobs of the policies due now; returns their ids."""
    continual.settle(session)
    now = continual.now()
    queued = []
    for window in continual.due(session, now):
        if not continual.claim(session, window, now):
            continue  # another worker took it
        policy = session.get(ContinualPolicy, window.policy_id)
        project = session.get(Project, policy.project_id)
        config = continual.job_config(policy, window)
        try:
            user = policy.created_by
            role = role_in(session, user, project) if user is not None else None
            if user is None or not (user.is_admin or (role is not None and role.allows(Role.editor))):
                raise UserError(f"policy {policy.name!r}: its creator may no longer queue jobs in this project")
            job = queue.submit(session, user, project, "continue", config, pretrained=settings.pretrained)
        except UserError as e:
            session.rollback()
            _failed(session, policy, config, str(e))
            continue
        policy.pending_job_id = job.id
        session.commit()
        queued.append(job.id)
    return queued


def _failed(session: Session, policy: ContinualPolicy, config: dict, error: str) -> None:
    session.add(ContinualWindow(
        project_id=policy.project_id, policy_id=policy.id, job_id=None, model=policy.model.name, alias=policy.alias,
        dataset=config["data"], window_start=config["window_start"], rows=0, drift=False, drift_rows=[],
        outcome="failed", error=error[:1000],
    ))  # fmt: skip
    session.commit()


def close_feedback_windows(session: Session, settings: Settings) -> list[tuple[str, int]]:
    """Store each deployment's labelled rows that have waited its ``max_age_s``; (deployment, version)."""
    return feedback.close_aged(session, DataStore.from_settings(settings), continual.now())

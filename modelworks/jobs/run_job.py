"""One attempt of one job, in its own process: ``python -m modelworks.jobs.run_job JOB TOKEN``.

Started by a worker's executor (`modelworks.jobs.executors`). The job's folder is
``<artifacts>/jobs/<id>``; the kind's runner (declared in `modelworks.job_kinds`, in
`modelworks.jobs.kinds`) works there. What each kind leaves:

=========  =========================================================================================
train      ``runs/run-DATE/``: the run, resumed from its last checkpoint by a later attempt
tune       ``study/``: the study folder, its trial runs in ``study/trials/``; a later attempt resumes
           the study; the best trial's run is the job's run
compress   ``runs/``: a copy of the source job's run and, beside it, the compressed run
export     ``runs/run/``: a copy of the source job's run with the export in ``export/<format>/``
=========  =========================================================================================

A job's datasets are decrypted into ``data/`` (mode 0700), the only place its data paths may lead
(``data.root``); that folder lives only as long as the attempt (`modelworks.jobs.attempt.working_data`).
A kind that leaves a run has it published to the artifact store and recorded with the result.
Every database write names the attempt's claim token: an attempt whose job was reclaimed by
another worker stops.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelworks.errors import UserError
from modelworks.job_kinds import JOB_KINDS, leaves_run
from modelworks.jobs.attempt import Attempt, LeaseLost, clear_working_data, job_folder, job_key
from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.db.models import Job, Project
from modelworks.platform.runs import job_run, publish_run, record_run
from modelworks.platform.settings import Settings
from modelworks.platform.storage import Storage


def publish(session: Session, settings: Settings, job: Job, run_dir: Path, folder: Path, **facts: Any) -> Any:
    """Put the job's run in the artifact store and add its row (uncommitted): the key mirrors
    where it lies in the job's folder. An attempt that finds its job's run already recorded (it
    died between the commit and its exit) keeps that one. ``facts``: `record_run`'s ``source`` and ``parent``."""
    existing = job_run(session, job.id)
    if existing is not None:
        return existing
    key = f"{job_key(job.project_id, job.id)}/{run_dir.resolve().relative_to(folder.resolve()).as_posix()}"
    artifacts = publish_run(Storage(settings.artifacts), run_dir, key)
    return record_run(session, job.project_id, run_dir, key, artifacts, job=job, **facts)


def main(argv: list[str]) -> int:
    job_id, token = int(argv[1]), argv[2]
    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    attempt = Attempt(settings, session_factory(engine), job_id, token)
    folder = None
    try:
        with attempt.sessions() as session:
            job = session.scalar(select(Job).where(Job.id == job_id, Job.claim_token == token))
            if job is None:
                raise LeaseLost(f"job {job_id}: not claimed with this token")
            project = session.get(Project, job.project_id)
        folder = job_folder(settings, project.id, job_id)
        folder.mkdir(parents=True, exist_ok=True)
        clear_working_data(folder)  # what an earlier attempt left when it was killed
        print(f"job {job_id} ({job.kind}), attempt {job.attempts} of {job.max_attempts}", flush=True)
        result = JOB_KINDS.get(job.kind).impl(attempt, job, project, folder)
        keeps_run = leaves_run(job.kind) and result.get("run") is not None  # a continue job may test only
        with attempt.sessions() as session:
            if keeps_run:
                run = publish(session, settings, job, Path(result["run"]), folder)
                print(f"recorded run {run.id} ({len(run.artifacts)} files)", flush=True)
            # The fence commits the run with the result: both, or neither if the claim was lost.
            attempt.update(session, result=result, **({"run_dir": result["run"]} if keeps_run else {}))
        print(f"done: {result.get('metrics')}", flush=True)
        return 0
    except LeaseLost as e:
        print(str(e), file=sys.stderr, flush=True)
        return 3
    except UserError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2
    finally:
        if folder is not None:
            clear_working_data(folder)  # decrypted copies live no longer than the attempt
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""evaluate: the metrics of the run of a finished job on one of its splits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelworks.api import load_run
from modelworks.jobs.attempt import Attempt, source_run, working_data
from modelworks.platform.db.models import Job, Project
from modelworks.store.jsonfile import numbers


def run_evaluate(attempt: Attempt, job: Job, project: Project, folder: Path) -> dict[str, Any]:
    run_dir, data = source_run(attempt, project, job.config["job"], folder)
    attempt.clear_metrics()
    run = load_run(run_dir, device="cpu", source=data, base_dir=folder, data_root=working_data(folder))
    metrics = numbers(run.evaluate(split=job.config["split"]))
    attempt.add_final_metrics(metrics)
    return {"run": str(run_dir), "split": job.config["split"], "metrics": metrics}

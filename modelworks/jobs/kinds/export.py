"""export: a copy of the source job's run, with the exported model inside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelworks.api import export
from modelworks.jobs.attempt import RUN_NAME, Attempt, copy_source_run
from modelworks.platform.db.models import Job, Project
from modelworks.store.jsonfile import json_safe, numbers


def run_export(attempt: Attempt, job: Job, project: Project, folder: Path) -> dict[str, Any]:
    """Export a copy of the source job's run, into that copy (``RUN/export/<format>/``): the run
    this job records holds the weights, config and preprocessing beside the exported model."""
    run_dir = copy_source_run(attempt, project, job.config["job"], folder, RUN_NAME)
    attempt.clear_metrics()
    print(f"exporting the run of job {job.config['job']} to {job.config['format']}", flush=True)
    options = {"opset": job.config.get("opset"), "quantize": job.config.get("quantize")}
    exported = export(run_dir, job.config["format"], options, base_dir=folder)
    check = exported.record.check
    metrics = numbers({"max_abs_diff": check.max_abs_diff})
    attempt.add_final_metrics(metrics)
    return {
        "run": str(run_dir),
        "format": job.config["format"],
        "file": exported.file.relative_to(run_dir).as_posix(),
        "check": json_safe(check.model_dump(mode="json", exclude_unset=True)),
        "passed": bool(check.passed),
        "max_abs_diff": check.max_abs_diff,
        "metrics": metrics,
    }

"""compress: a copy of the source job's run, and beside it the compressed run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelworks.api import compress
from modelworks.jobs.attempt import Attempt, copy_source_run, finite, numbers
from modelworks.platform.db.models import Job, Project
from modelworks.store.files import COMPRESSION_JSON


def run_compress(attempt: Attempt, job: Job, project: Project, folder: Path) -> dict[str, Any]:
    """Compress a copy of the source job's run; the new run is written beside the copy, in ``runs/``
    of this job's folder, and its comparison with the parent (compression.json) goes in the result."""
    parent = copy_source_run(attempt, project, job.config["job"], folder)
    attempt.clear_metrics()
    print(f"compressing the run of job {job.config['job']} ({parent.name}) with {job.config['method']}", flush=True)
    child = compress(parent, job.config["method"], **job.config["options"])
    record = json.loads((child.path / COMPRESSION_JSON).read_text(encoding="utf-8"))
    metrics = numbers(record["compressed"]["metrics"])
    attempt.add_final_metrics(metrics)
    comparison = {key: record[key] for key in ("measured_on", "parent_stats", "compressed", "change")}
    return {"run": str(child.path), "method": record["method"], "options": finite(record["options"]),
            "comparison": finite(comparison), "metrics": metrics}

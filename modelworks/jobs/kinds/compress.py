"""compress: a copy of the source job's run, and beside it the compressed run."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from modelworks.api import compress
from modelworks.jobs.attempt import Attempt, copy_source_run
from modelworks.models.pretrained_config import offer_only
from modelworks.platform.db.models import Job, Project
from modelworks.store.compression import read_compression
from modelworks.store.jsonfile import json_safe, numbers


def run_compress(attempt: Attempt, job: Job, project: Project, folder: Path) -> dict[str, Any]:
    """Compress a copy of the source job's run; the new run is written beside the copy, in ``runs/``
    of this job's folder, and its comparison with the parent (compression.json) goes in the result."""
    parent = copy_source_run(attempt, project, job.config["job"], folder)
    attempt.clear_metrics()
    print(f"compressing the run of job {job.config['job']} ({parent.name}) with {job.config['method']}", flush=True)
    options = copy.deepcopy(job.config["options"])
    offer_only(options, attempt.settings.pretrained)  # a distillation's pretrained student: only one offered
    child = compress(parent, job.config["method"], options, base_dir=folder)
    stats = read_compression(child.path)
    metrics = numbers(stats.compressed.metrics)
    attempt.add_final_metrics(metrics)
    comparison = stats.model_dump(mode="json", include={"measured_on", "parent_stats", "compressed", "change"})
    return {
        "run": str(child.path),
        "method": stats.method,
        "options": json_safe(stats.options),
        "comparison": json_safe(comparison),
        "metrics": metrics,
    }

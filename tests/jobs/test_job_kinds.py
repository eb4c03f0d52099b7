"""Tune, compress and export jobs end to end: a real server, real ``modelworks worker`` processes,
tiny builtin:iris models on the CPU. Each kind's run is recorded and can be registered; bad
configs are refused with a 422 that names the key."""

from __future__ import annotations

import os
import signal
import uuid
from typing import Any

import pytest

from modelworks.client import ApiError

from ..fixtures.jobs import TINY, Workers, finished, job_pid, wait_for

TUNE = {
    **TINY,
    "train": {"epochs": 2, "batch_size": 16, "device": "cpu"},
    "tune": {"trials": 3, "sampler": "random", "space": {"train.lr": {"loguniform": [1.0e-3, 1.0e-1]}}},
}


@pytest.fixture(scope="module")
def trained(jp) -> Any:
    """A project with two workers and one succeeded train job: what the other kinds start from."""
    name = f"k-{uuid.uuid4().hex[:6]}"
    jp.client().create_project(name)
    editor, editor_token = jp.new_user("editor")
    jp.client().set_member(name, editor, "editor")
    client = jp.client(editor_token)
    workers = Workers(jp.settings)
    workers.start("--cpu-slots", "2")
    job = client.submit_job(name, "train", TINY)
    done = finished(client, name, job["id"])
    assert done["state"] == "succeeded", done["error"]
    yield {"client": client, "name": name, "job": done, "run": _run_of(client, name, job["id"])}
    workers.stop_all()


def _run_of(client, name: str, job_id: int) -> dict[str, Any]:
    """The run a job recorded (with its result, before the job succeeded)."""
    runs = wait_for(lambda: client.runs(name, job=job_id)["items"], 30, f"the run of job {job_id}")
    return client.run(name, runs[0]["id"])


def _rejected(client, name: str, kind: str, config: dict[str, Any]) -> str:
    with pytest.raises(ApiError) as e:
        client.submit_job(name, kind, config)
    assert e.value.status == 422, str(e.value)
    return str(e.value)


def test_tune_job_streams_each_trial_resumes_after_a_crash_and_records_its_best_run(jp, trained):
    client, name = trained["client"], trained["name"]
    job = client.submit_job(name, "tune", TUNE)
    assert job["gpus"] == 0
    # kill -9 the job's process once its first trial is streamed: the next attempt resumes the study
    wait_for(lambda: client.job_metrics(name, job["id"])["total"] > 0, 60, "the first trial")
    os.kill(job_pid(jp, job["id"]), signal.SIGKILL)
    done = finished(client, name, job["id"])
    assert done["state"] == "succeeded", done["error"]
    assert done["attempts"] == 2
    result = done["result"]
    assert result["trials"] == 3 and result["metric"] == "val_accuracy" and "train.lr" in result["best_params"]
    points = client.job_metrics(name, job["id"])["items"]
    assert len(points) == 3 and {p["name"] for p in points} == {"val_accuracy"}
    assert len({p["step"] for p in points}) == 3 and all(p["epoch"] == 2 for p in points)  # step = trial number
    assert result["best_value"] == max(p["value"] for p in points)
    assert next(p for p in points if p["step"] == result["best_trial"])["value"] == result["best_value"]
    logs = "\n".join(line["line"] for line in client.job_logs(name, job["id"]))
    assert "resuming the study" in logs
    run = _run_of(client, name, job["id"])
    assert run["lineage"]["source"] == "builtin:iris"
    assert {"model.safetensors", "config.yaml", "preprocess.json"} <= {a["path"] for a in run["artifacts"]}
    assert client.register_model(name, run["id"], "tuned")["version"] == 1


def test_compress_jobs_record_runs_that_name_their_parent(trained):
    client, name, source = trained["client"], trained["name"], trained["job"]["id"]
    quantized = client.submit_job(name, "compress", {"job": source, "method": "quantize-dynamic"})
    pruned = client.submit_job(
        name, "compress", {"job": source, "method": "prune", "options": {"amount": 0.5, "finetune_epochs": 1}}
    )
    assert quantized["gpus"] == 0 and pruned["gpus"] == 0
    for job in (quantized, pruned):
        done = finished(client, name, job["id"])
        assert done["state"] == "succeeded", done["error"]
        comparison = done["result"]["comparison"]
        assert comparison["change"]["size_ratio"] > 0 and "accuracy" in comparison["compressed"]["metrics"]
        assert f"/jobs/{job['id']}/runs/" in done["run_dir"]  # written in its own job folder
        run = _run_of(client, name, job["id"])
        assert run["lineage"]["parent_run"] == trained["run"]["id"] and run["lineage"]["parent_job"] == source
        assert run["lineage"]["source"] == "builtin:iris"
        assert run["config"]["compression"]["method"] == done["config"]["method"]
        assert "accuracy" in run["metrics"]
    assert done["result"]["options"]["finetune_epochs"] == 1
    # a quantized model is not float32: pruning it is refused before it is queued
    assert "float32" in _rejected(client, name, "compress", {"job": quantized["id"], "method": "prune"})
    version = client.register_model(name, _run_of(client, name, pruned["id"])["id"], "pruned")
    assert any(
        a["path"] == "model.safetensors" for a in client.model_version(name, "pruned", version["version"])["artifacts"]
    )


def test_export_job_records_the_run_with_its_onnx_model(trained):
    client, name, source = trained["client"], trained["name"], trained["job"]["id"]
    job = client.submit_job(name, "export", {"job": source, "format": "onnx"})
    done = finished(client, name, job["id"])
    assert done["state"] == "succeeded", done["error"]
    result = done["result"]
    assert result["passed"] is True and result["max_abs_diff"] < 1e-4 and result["file"] == "export/onnx/model.onnx"
    run = _run_of(client, name, job["id"])
    paths = {a["path"] for a in run["artifacts"]}
    assert {
        "export/onnx/model.onnx",
        "export/onnx/inputs.json",
        "model.safetensors",
        "config.yaml",
        "preprocess.json",
    } <= paths
    assert run["lineage"]["parent_run"] == trained["run"]["id"]
    version = client.register_model(name, run["id"], "exported")
    assert "export/onnx/model.onnx" in {
        a["path"] for a in client.model_version(name, "exported", version["version"])["artifacts"]
    }
    # an exported run is a run like any other: it can be evaluated
    evaluation = client.submit_job(name, "evaluate", {"job": job["id"]})
    done = finished(client, name, evaluation["id"])
    assert done["state"] == "succeeded", done["error"]
    assert done["result"]["metrics"]["accuracy"] == pytest.approx(trained["run"]["metrics"]["accuracy"])


def test_bad_configs_are_422_naming_the_key(trained, project):
    client, name, source = trained["client"], trained["name"], trained["job"]["id"]
    before = client.jobs(name)["total"]
    # tune
    assert "tune" in _rejected(client, name, "tune", TINY)  # no tune: section
    assert "tune.parallel" in _rejected(client, name, "tune", {**TUNE, "tune": {**TUNE["tune"], "parallel": 2}})
    assert "tune.space" in _rejected(
        client, name, "tune", {**TUNE, "tune": {**TUNE["tune"], "space": {"train.lrr": {"choice": [1]}}}}
    )
    assert "data.source" in _rejected(client, name, "tune", {**TUNE, "data": {"source": "/etc/passwd"}})
    cuda = client.submit_job(name, "tune", {**TUNE, "train": {**TUNE["train"], "device": "cuda"}})
    assert cuda["gpus"] == 1  # no worker here has a GPU: it stays queued
    client.cancel_job(name, cuda["id"])
    # compress
    assert (
        "method" in (message := _rejected(client, name, "compress", {"job": source, "method": "shrink"}))
        and "quantize-dynamic" in message
    )
    assert "amount" in _rejected(client, name, "compress", {"job": source, "method": "prune", "options": {"amount": 2}})
    assert "amout" in _rejected(client, name, "compress", {"job": source, "method": "prune", "options": {"amout": 0.5}})
    assert "methd" in _rejected(client, name, "compress", {"job": source, "methd": "prune"})
    assert "job" in _rejected(client, name, "compress", {"job": 999999, "method": "half"})
    # export
    assert "format" in _rejected(client, name, "export", {"job": source, "format": "tflite"})
    assert "opset" in _rejected(client, name, "export", {"job": source, "format": "onnx", "opset": 99})
    assert "opset" in _rejected(client, name, "export", {"job": source, "format": "torchscript", "opset": 18})
    assert "quantize" in _rejected(client, name, "export", {"job": source, "format": "onnx", "quantize": "int4"})
    # the job a config names: of another project, not succeeded, or of a kind that has no run
    other = project["editor"]
    assert f"job {source}" in _rejected(other, project["name"], "compress", {"job": source, "method": "half"})
    assert f"job {source}" in _rejected(other, project["name"], "export", {"job": source, "format": "onnx"})
    queued = client.submit_job(name, "train", {**TINY, "train": {**TINY["train"], "device": "cuda"}})  # waits for a GPU
    assert "not succeeded" in _rejected(client, name, "compress", {"job": queued["id"], "method": "half"})
    assert "not succeeded" in _rejected(client, name, "export", {"job": queued["id"], "format": "onnx"})
    client.cancel_job(name, queued["id"])
    evaluation = client.submit_job(name, "evaluate", {"job": source})
    assert "no train, tune or compress job" in _rejected(
        client, name, "export", {"job": evaluation["id"], "format": "onnx"}
    )
    client.cancel_job(name, evaluation["id"])
    assert client.jobs(name)["total"] == before + 3  # only the three accepted above

"""The platform on an S3-compatible artifact store: a real S3 server (moto's, on 127.0.0.1), the
real platform server, and real worker processes that train, upload their runs and evaluate them
from S3. Nothing of a job's work stays only on a worker's disk: runs, datasets and model versions
are objects in the bucket, checked against their SHA-256 when read, and gone with their project."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelworks.client import ApiError
from modelworks.platform.bootstrap import prepare
from modelworks.platform.settings import Settings

from ..fixtures.jobs import Workers, wait_for
from ..fixtures.platform import LiveServer, Platform

s3fs = pytest.importorskip("s3fs", reason="the S3 store needs s3fs (pip install 'modelworks[s3]')")
moto_server = pytest.importorskip("moto.server", reason="the S3 test server is moto's (pip install 'moto[server]')")

BUCKET = "mw-artifacts"
CSV = "x1,x2,label\n" + "".join(
    f"{i % 7},{(i * 3) % 5},{'yes' if (i % 7) + (i * 3) % 5 > 5 else 'no'}\n" for i in range(120)
)
TINY = {
    "data": {"source": "dataset:table@1", "target": "label", "split": {"validation": 0.2, "test": 0.2, "seed": 1}},
    "model": {"type": "mlp", "hidden": [8]},
    "train": {"epochs": 2, "batch_size": 16, "device": "cpu"},
}


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    """A real S3 endpoint on loopback, found by every process through AWS_ENDPOINT_URL."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        fs = s3fs.S3FileSystem(skip_instance_cache=True)
        fs.mkdir(BUCKET)
        yield fs
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


@pytest.fixture(scope="module")
def sp(s3, tmp_path_factory) -> Iterator[Platform]:
    home = tmp_path_factory.mktemp("s3-platform")
    settings = Settings.from_env(
        {}, home=home, database_url=f"sqlite:///{home / 'modelworks.db'}", port=0, artifacts=f"s3://{BUCKET}/platform"
    )
    token = prepare(settings)
    with LiveServer(settings) as server:
        p = Platform(server=server, settings=settings, backend="sqlite", admin_token=token)
        yield p
        p.close()


def project_id(sp: Platform, name: str) -> int:
    from sqlalchemy import select

    from modelworks.platform.db import make_engine, session_factory
    from modelworks.platform.db.models import Project

    engine = make_engine(sp.settings.database_url)
    try:
        with session_factory(engine)() as session:
            return session.scalar(select(Project.id).where(Project.name == name))
    finally:
        engine.dispose()


def objects(s3, prefix: str) -> list[str]:
    s3.invalidate_cache()
    return [p.removeprefix(f"{BUCKET}/platform/") for p in s3.find(f"{BUCKET}/platform/{prefix}")]


def test_jobs_runs_and_models_live_in_the_bucket(s3, sp: Platform, tmp_path: Path):
    client, name = sp.client(), f"p-{uuid.uuid4().hex[:6]}"
    client.create_project(name)
    pid = project_id(sp, name)
    client.upload_dataset(name, "table", CSV.encode(), filename="table.csv")
    assert any(k.startswith(f"{pid}/datasets/") for k in objects(s3, f"{pid}/datasets"))
    job = client.submit_job(name, "train", TINY)
    workers = Workers(sp.settings)
    workers.start()
    try:
        done = wait_for(
            lambda: (j := client.job(name, job["id"]))["state"] in ("succeeded", "failed") and j, 120, "the train job"
        )
        assert done["state"] == "succeeded", done["error"]
        run = wait_for(lambda: client.runs(name, job=job["id"])["items"], 30, "the run to be recorded")[0]
        # The run is in the bucket, file for file as its manifest says.
        detail = client.run(name, run["id"])
        stored = set(objects(s3, f"{pid}/jobs/{job['id']}"))
        prefix = next(k.rsplit("/", 1)[0] for k in stored if k.endswith("/model.safetensors"))
        assert {f"{prefix}/{a['path']}" for a in detail["artifacts"]} <= stored
        # Downloads come from S3, checked.
        weights = client.download_run_artifact(name, run["id"], "model.safetensors", tmp_path / "w.safetensors")
        entry = next(a for a in detail["artifacts"] if a["path"] == "model.safetensors")
        assert weights.stat().st_size == entry["size"]
        # A model version is copied within the bucket.
        version = client.register_model(name, run["id"], "classifier")
        assert any(
            k.startswith(f"{pid}/models/") and k.endswith("model.safetensors") for k in objects(s3, f"{pid}/models")
        )
        client.download_model_artifact(name, "classifier", version["version"], "config.yaml", tmp_path / "config.yaml")
        # An evaluate job reads the run back from the bucket (the worker's copy is not used).
        local = sp.settings.work_dir / str(pid) / "jobs" / str(job["id"])
        assert sp.settings.work_dir != Path(sp.settings.artifacts)
        import shutil

        shutil.rmtree(local)
        evaluation = client.submit_job(name, "evaluate", {"job": job["id"], "split": "test"})
        done = wait_for(
            lambda: (j := client.job(name, evaluation["id"]))["state"] in ("succeeded", "failed") and j,
            120,
            "the evaluate job",
        )
        assert done["state"] == "succeeded", done["error"]
        assert "accuracy" in done["result"]["metrics"]
    finally:
        workers.stop_all()
    # Changed in the bucket: refused, never served.
    s3.pipe(f"{BUCKET}/platform/{prefix}/model.safetensors", b"not the weights")
    with pytest.raises(ApiError) as e:
        client.download_run_artifact(name, run["id"], "model.safetensors", tmp_path / "again.safetensors")
    assert "artifact changed" in str(e.value)
    # Deleting the project deletes its objects.
    client.delete_project(name)
    assert objects(s3, f"{pid}/") == []


def test_an_unreachable_store_is_one_clear_error(tmp_path: Path):
    from modelworks.errors import UserError
    from modelworks.platform.storage import Storage

    with pytest.raises(UserError, match="artifact store 'nosuch://x' cannot be opened"):
        Storage("nosuch://x")

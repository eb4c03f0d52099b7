"""A continual policy fed by a stream, end to end: Redis Streams windows (Debian's redis-server on
127.0.0.1) become versions of a dataset; a policy on it (at least N new rows) queues a continue job
in a real worker; the gate promotes the candidate; the policy's history shows window -> candidate
-> decision, and the candidate never trained on a row of its parent's holdout."""

from __future__ import annotations

import json
import uuid

import pandas as pd
import pytest
from sqlalchemy import select

import modelworks.api
from modelworks.continual.overlap import row_hashes
from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.db.models import Project
from modelworks.platform.runs import publish_run, record_run
from modelworks.platform.storage import Storage
from modelworks.streams.consume import consume
from modelworks.streams.sources import RedisSource, StreamConfig

from ..fixtures.jobs import wait_for
from ..server.test_continual import _check
from .continual_data import base_config, new_rows, old_rows

redis = pytest.importorskip("redis", reason="the redis client is not installed (pip install 'modelworks[streams]')")
STREAM = "clicks"


def _send(url: str, frame: pd.DataFrame) -> None:
    with redis.Redis.from_url(url) as r:
        for row in frame.to_dict("records"):
            r.xadd(STREAM, {"row": json.dumps(row)})


def _parent(jp, client, project: str, tmp_path) -> modelworks.api.Run:
    """Model ``clf`` version 1, trained here on dataset ``clicks`` version 1, as ``production``."""
    data = client.download_dataset(project, "clicks", 1, tmp_path / "clicks-1.jsonl")
    config = base_config("clicks")
    config["data"]["source"] = str(data)
    config["train"].update(epochs=8, progress=False)
    run = modelworks.api.train({**config, "runs_dir": str(tmp_path / "runs")}, base_dir=tmp_path)
    engine = make_engine(jp.settings.database_url)
    with session_factory(engine)() as session:
        project_id = session.scalar(select(Project.id).where(Project.name == project))
        key = f"{project_id}/uploads/{uuid.uuid4().hex[:8]}"
        artifacts = publish_run(Storage(jp.settings.artifacts), run.path, key)
        run_id = record_run(session, project_id, run.path, key, artifacts, source="dataset:clicks@1").id
        session.commit()
    engine.dispose()
    client.register_model(project, run_id, "clf")
    client.set_alias(project, "clf", "production", 1)
    return run


@pytest.mark.slow  # 53 s at load 7 on 2 cores, ~37 s of CPU: a worker and a job process each start torch
def test_stream_windows_trigger_a_policy_whose_candidate_is_gated_and_promoted(
    jp, project, workers, redis_url, tmp_path, monkeypatch
):
    editor, name = project["editor"], project["name"]

    def consume_now(window_rows: int) -> None:
        source = RedisSource(url=redis_url, stream=STREAM, window_rows=window_rows, block_ms=50)
        consume(StreamConfig(project=name, dataset="clicks", user="admin", source=source), jp.settings, once=True)

    _send(redis_url, old_rows(160, 1))
    consume_now(1000)  # version 1: the old world
    parent = _parent(jp, editor, name, tmp_path)
    editor.create_policy(name, "watch", "clf", "clicks", min_rows=100, train={"epochs": 20})

    _send(redis_url, new_rows(120, 2))  # the shifted world, in two windows of 60 rows
    with redis.Redis.from_url(redis_url) as r:
        last_id = r.xrevrange(STREAM, count=1)[0][0].decode()
    consume_now(60)
    windows = editor.dataset_windows(name, "clicks")["items"]
    assert [(w["version"], w["rows_appended"], w["origin"]) for w in windows] == [
        (3, 60, "redis"), (2, 60, "redis"), (1, 160, "redis")
    ]  # fmt: skip
    assert windows[0]["last_offset"] == last_id

    monkeypatch.setenv("MODELWORKS_POLICY_CHECK_S", "0.2")
    workers.start()
    history = wait_for(lambda: editor.windows(name, policy="watch")["items"], 240, "the policy's window")
    (window,) = history
    assert (window["dataset"], window["window_start"], window["rows"]) == ("dataset:clicks@3", 160, 120)
    assert window["outcome"] == "promoted", window["decision"]
    assert window["decision"]["passed"] and (window["parent_version"], window["candidate_version"]) == (1, 2)
    assert editor.alias(name, "clf", "production")["version"] == 2
    assert editor.policy(name, "watch")["last_version"] == 3
    assert _check(jp) == []  # nothing new since: no second job

    # The cumulative version 3 holds the parent's holdout again: the candidate did not train on it.
    runs = editor.runs(name, job=window["job_id"])["items"]
    lineage = editor.run(name, runs[0]["id"])["lineage"]
    columns = ["x", "noise", "channel", "label"]
    held = row_hashes(parent.frames()["test"], columns)  # the parent's evaluation split: the gate's old holdout
    assert lineage["parent_version"] == 1 and sorted(lineage["excluded_rows"]) == sorted(held)
    stored = editor.download_dataset(name, "clicks", 3, tmp_path / "clicks-3.jsonl")
    assert len(pd.read_json(stored, lines=True)) == 280

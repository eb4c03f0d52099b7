"""The stream-source registry's contract (every entry) and the folder source: each file stored
once, in a version that records its name and SHA-256, across runs."""

from __future__ import annotations

import hashlib
import inspect
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from modelworks.errors import UserError
from modelworks.streams.consume import consume
from modelworks.streams.sources import STREAM_SOURCES, FolderSource, StreamConfig, load_stream_config


@pytest.mark.parametrize("name", STREAM_SOURCES.names())
def test_every_source_is_a_config_and_a_consumer(name):
    entry = STREAM_SOURCES.get(name)
    assert entry.config_cls.model_fields["type"].default == name
    if name == "redis":
        pytest.importorskip("redis")
    consumer = entry.impl
    assert list(inspect.signature(consumer).parameters) == ["config", "sink"]
    assert list(inspect.signature(consumer.run).parameters) == ["self", "stop", "once"]
    required = [f for f, info in entry.config_cls.model_fields.items() if info.is_required()]
    config = StreamConfig.model_validate(
        {"project": "p", "dataset": "d", "user": "u", "source": {"type": name, **{f: "x" for f in required}}}
    )
    assert type(config.source) is entry.config_cls


def test_reading_a_consumer_config_imports_neither_redis_nor_pandas():
    code = (
        "import sys, modelworks.streams.sources\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'redis', 'pandas', 'torch'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_a_bad_consumer_config_names_the_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("project: p\ndataset: d\nuser: u\nsource: {type: folder, path: x, pol_seconds: 3}\n")
    with pytest.raises(UserError, match=r"source\.folder\.pol_seconds"):
        load_stream_config(path)
    path.write_text("project: p\ndataset: d\nuser: u\nsource: {type: kafka}\n")
    with pytest.raises(UserError, match="source"):
        load_stream_config(path)


def settled(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    old = time.time() - 60
    os.utime(path, (old, old))
    return path


def test_each_file_of_a_folder_is_stored_once(plat, project, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    a = settled(inbox / "a.csv", "n,label\n1,yes\n2,no\n")
    settled(inbox / "b.jsonl", '{"n": 3, "label": "是"}\n')
    settled(inbox / "bad.csv", "n,colour\n4,red\n")  # a column the dataset does not have: left alone
    (inbox / "notes.txt").write_text("not rows")
    (inbox / "c.csv").write_text("n,label\n5,yes\n")  # still being written (just changed): not yet
    cfg = StreamConfig(project=project, dataset="inbox", user="admin",
                       source=FolderSource(path=str(inbox), settle_seconds=30))  # fmt: skip
    consume(cfg, plat.settings, once=True)
    consume(cfg, plat.settings, once=True)  # a second run finds nothing new
    client = plat.client()
    windows = client.dataset_windows(project, "inbox")["items"][::-1]
    assert [(w["first_offset"], w["rows_appended"], w["origin"]) for w in windows] == [
        ("a.csv", 2, "folder"), ("b.jsonl", 1, "folder"),
    ]  # fmt: skip
    assert windows[0]["detail"]["sha256"] == hashlib.sha256(a.read_bytes()).hexdigest()
    settled(inbox / "c.csv", "n,label\n5,yes\n")
    consume(cfg, plat.settings, once=True)
    latest = client.dataset(project, "inbox")["latest"]
    path = client.download_dataset(project, "inbox", latest, tmp_path / "inbox.jsonl")
    frame = pd.read_json(path, lines=True)
    assert (latest, frame["n"].tolist(), frame["label"].tolist()) == (3, [1, 2, 3, 5], ["yes", "no", "是", "yes"])

"""The Redis Streams source against Debian's redis-server on 127.0.0.1: windows of N rows or T
seconds stored with their entry ids; a consumer killed with kill -9 mid-window, and one that died
between storing a window and acknowledging it, restart without losing or storing twice a row."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from modelworks.streams.consume import DatasetSink, consume
from modelworks.streams.redis_source import RedisConsumer, entry_order
from modelworks.streams.sources import RedisSource, StreamConfig

redis = pytest.importorskip("redis", reason="the redis client is not installed (pip install 'modelworks[streams]')")
ROOT = Path(__file__).resolve().parents[2]


def add(url: str, stream: str, numbers: range) -> None:
    with redis.Redis.from_url(url) as r:
        for n in numbers:
            r.xadd(stream, {"row": json.dumps({"n": n, "x": n / 10, "label": "ab"[n % 2]})})


def stored(plat, project: str, dataset: str, tmp_path: Path) -> tuple[list[int], list[dict]]:
    """Every row's ``n`` in the newest version, and each window (oldest first)."""
    client = plat.client()
    latest = client.dataset(project, dataset)["latest"]
    path = client.download_dataset(project, dataset, latest, tmp_path / f"{dataset}-{latest}.jsonl")
    windows = client.dataset_windows(project, dataset, limit=500)["items"][::-1]
    return pd.read_json(path, lines=True)["n"].tolist(), windows


def check_offsets(windows: list[dict], stream_ids: list[str]) -> None:
    """Windows follow one another without a gap or an overlap and cover every entry."""
    covered = []
    for w in windows:
        first, last = entry_order(w["first_offset"]), entry_order(w["last_offset"])
        inside = [i for i in stream_ids if first <= entry_order(i) <= last]
        assert len(inside) == w["rows_appended"] == w["detail"]["entries"]
        covered += inside
    assert covered == stream_ids


def config(project: str, dataset: str, url: str, stream: str, **source) -> StreamConfig:
    return StreamConfig(project=project, dataset=dataset, user="admin",
                        source=RedisSource(url=url, stream=stream, **source))  # fmt: skip


def test_windows_of_rows_and_of_seconds_are_stored_with_their_offsets(plat, project, redis_url, tmp_path):
    add(redis_url, "clicks", range(25))
    cfg = config(project, "clicks", redis_url, "clicks", window_rows=10, window_seconds=0.5, block_ms=100)
    stop = threading.Event()
    thread = threading.Thread(target=consume, args=(cfg, plat.settings), kwargs={"stop": stop})
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while plat.client().dataset_windows(project, "clicks")["total"] < 3:
            assert time.monotonic() < deadline and thread.is_alive(), "the windows were not stored"
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(10)
    numbers, windows = stored(plat, project, "clicks", tmp_path)
    assert numbers == list(range(25))
    assert [w["rows_appended"] for w in windows] == [10, 10, 5]  # the last one closed by its 0.5 s
    with redis.Redis.from_url(redis_url, decode_responses=True) as r:
        check_offsets(windows, [i for i, _ in r.xrange("clicks")])
        assert r.xpending("clicks", "modelworks")["pending"] == 0


def test_kill_9_mid_window_and_a_crash_before_the_ack_lose_and_repeat_nothing(plat, project, redis_url, tmp_path):
    stream = "orders"
    add(redis_url, stream, range(25))
    cfg = config(project, "orders", redis_url, stream, window_rows=10, window_seconds=600, block_ms=100)
    path = tmp_path / "orders.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump()), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MODELWORKS_HOME": str(plat.settings.home),
           "MODELWORKS_DATABASE_URL": plat.settings.database_url,
           "MODELWORKS_DATA_KEY": plat.settings.data_key.get_secret_value()}  # fmt: skip
    consumer = subprocess.Popen([sys.executable, "-m", "modelworks", "streams", "consume", str(path)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        deadline = time.monotonic() + 60
        # two windows of 10 stored; the last 5 entries delivered, in the window in hand, not acknowledged
        while plat.client().dataset_windows(project, "orders")["total"] < 2 or r.xpending(stream, "modelworks")[
            "pending"
        ] != 5:  # fmt: skip
            assert time.monotonic() < deadline and consumer.poll() is None, consumer.stderr.read().decode()[-2000:]
            time.sleep(0.05)
        consumer.send_signal(signal.SIGKILL)
        consumer.wait(10)
    finally:
        if consumer.poll() is None:
            consumer.kill()
        consumer.stderr.close()
    add(redis_url, stream, range(25, 37))

    # A consumer that stored a window and died before its XACK: store the next 10 entries, no ack.
    sink = DatasetSink(plat.settings, project, "orders", "admin")
    crashed = RedisConsumer(cfg.source, sink)
    crashed.start()
    window: list = []
    for entry_id, fields in crashed.read("0", None):  # its pending entries: the 5 of the killed window
        crashed.accept(entry_id, fields, window)
    for entry_id, fields in crashed.read(">", None)[:5]:
        crashed.accept(entry_id, fields, window)
    assert len(window) == 10
    crashed.store(window)  # ... and no ack
    sink.close()
    assert r.xpending(stream, "modelworks")["pending"] == 15

    consume(cfg, plat.settings, once=True)  # restart: pending first, then the rest
    numbers, windows = stored(plat, project, "orders", tmp_path)
    assert numbers == list(range(37))  # every row once, in order
    assert [w["rows_appended"] for w in windows] == [10, 10, 10, 7]
    check_offsets(windows, [i for i, _ in r.xrange(stream)])
    assert r.xpending(stream, "modelworks")["pending"] == 0
    r.close()


def test_an_entry_that_is_not_a_row_is_set_aside_and_the_stream_goes_on(plat, project, redis_url, tmp_path):
    add(redis_url, "mixed", range(2))
    with redis.Redis.from_url(redis_url, decode_responses=True) as r:
        r.xadd("mixed", {"row": json.dumps({"n": "two", "x": 0.1, "label": "a"})})
        r.xadd("mixed", {"row": "{not json"})
    add(redis_url, "mixed", range(3, 5))
    cfg = config(project, "mixed", redis_url, "mixed", window_rows=2, block_ms=50)
    consume(cfg, plat.settings, once=True)
    numbers, _ = stored(plat, project, "mixed", tmp_path)
    assert numbers == [0, 1, 3, 4]
    with redis.Redis.from_url(redis_url, decode_responses=True) as r:
        rejected = [fields["_error"] for _, fields in r.xrange("mixed:rejected")]
        assert len(rejected) == 2 and "row 1, column 'n': a number is expected" in rejected[0]
        assert r.xpending("mixed", "modelworks")["pending"] == 0

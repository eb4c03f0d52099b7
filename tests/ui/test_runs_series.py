"""Min/max downsampling of metric series (`modelworks.ui.series`), alone and over a real database."""

from __future__ import annotations

import math
import random

import pytest
from sqlalchemy import insert

from modelworks.platform.db import make_engine, session_factory, upgrade
from modelworks.platform.db.models import Job, JobMetric, Project
from modelworks.ui.series import LIVE_APPEND, job_series, minmax


def _noise(n: int, seed: int = 0) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [(float(i), 1.0 + 0.01 * rng.random()) for i in range(n)]


def test_a_single_spike_in_10000_points_survives() -> None:
    points = _noise(10_000)
    points[7_321] = (7_321.0, 50.0)  # up
    points[2_222] = (2_222.0, -50.0)  # down
    kept = minmax(points, 100)
    assert (7_321.0, 50.0) in kept and (2_222.0, -50.0) in kept
    assert max(y for _, y in kept) == 50.0 and min(y for _, y in kept) == -50.0


@pytest.mark.parametrize("n,buckets", [(10_000, 100), (10_001, 7), (999, 500), (3, 1), (0, 5)])
def test_output_is_bounded_ordered_and_keeps_the_ends(n: int, buckets: int) -> None:
    points = _noise(n, seed=n)
    kept = minmax(points, buckets)
    assert len(kept) <= 2 * buckets + 2
    assert all(p in points for p in kept)
    assert [x for x, _ in kept] == sorted(x for x, _ in kept)  # order kept
    if n:
        assert kept[0] == points[0] and kept[-1] == points[-1]
    if n <= 2 * buckets + 2:
        assert kept == points  # what fits is not touched


def test_every_bucket_keeps_its_extremes() -> None:
    points = [(float(i), math.sin(i / 50.0) + (i % 97) / 10) for i in range(5_000)]
    kept = set(minmax(points, 50))
    for b in range(50):
        chunk = points[b * 100 : (b + 1) * 100]
        assert min(chunk, key=lambda p: p[1]) in kept and max(chunk, key=lambda p: p[1]) in kept


def test_buckets_must_be_positive() -> None:
    with pytest.raises(ValueError, match="buckets must be at least 1; got 0"):
        minmax([(0.0, 1.0)], 0)


def test_job_series_reads_the_job_stream_and_polls_what_is_new(database) -> None:
    engine = make_engine(database.url)  # SQLite and PostgreSQL
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions() as session:
        project = Project(name="p")
        session.add(project)
        session.flush()
        job = Job(project_id=project.id, kind="train", config={})
        session.add(job)
        session.flush()
        rows = [{"job_id": job.id, "step": i, "epoch": 0, "name": "loss", "value": 1.0} for i in range(10_000)]
        rows[4_000]["value"] = 9.0
        val = "val_准确率"
        rows += [{"job_id": job.id, "step": 100 * e, "epoch": e, "name": val, "value": e / 10} for e in range(5)]
        rows.append({"job_id": job.id, "step": None, "epoch": None, "name": "accuracy", "value": 0.9})  # final value
        session.execute(insert(JobMetric), rows)
        session.commit()

        series = job_series(session, job.id, buckets=100)
        assert series.whole and set(series.x) == {"loss", "val_准确率"}  # the step-less final value is no curve
        assert series.total == {"loss": 10_000, "val_准确率": 5}
        assert len(series.x["loss"]) <= 202 and 9.0 in series.y["loss"]
        assert series.x["val_准确率"] == [0, 100, 200, 300, 400]

        session.add(JobMetric(job_id=job.id, step=10_000, epoch=1, name="loss", value=0.5))
        session.commit()
        newer = job_series(session, job.id, after=series.last_id)
        assert not newer.whole and newer.x == {"loss": [10_000.0]} and newer.y == {"loss": [0.5]}
        assert job_series(session, job.id, after=newer.last_id).x == {}

        session.execute(
            insert(JobMetric),
            [{"job_id": job.id, "step": 20_000 + i, "name": "loss", "value": 1.0} for i in range(LIVE_APPEND + 1)],
        )
        session.commit()
        again = job_series(session, job.id, buckets=100, after=newer.last_id)
        assert again.whole and again.total["loss"] == 10_001 + LIVE_APPEND + 1 and len(again.x["loss"]) <= 202
    engine.dispose()

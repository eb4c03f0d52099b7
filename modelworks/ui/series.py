"""Metric series for charts: a job's points from ``job_metrics``, cut down on the server so that a
10,000-step curve costs a browser a few hundred points, with every spike still in it.

`minmax` splits a series into equal runs of consecutive points (buckets) and keeps, in each, the
point with the lowest and the one with the highest value, in their original order: a chart drawn
from them has the same envelope as one drawn from every point, where sampling every k-th point
(MLflow's 320 samples, or `modelworks.platform.runs.metric_history`) can step over an outlier.

The points are the ones the platform already keeps: the job's metric stream in ``job_metrics``
(`modelworks.platform.db.models.JobMetric`, written as the job trains), read here in the order
they were recorded; whole-run values (no step: an evaluate job's result) are no curve and are
left out. ``after`` reads only the points recorded since a chart last asked, which is
what a live chart polls for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelworks.platform.db.models import JobMetric

BUCKETS = 500  # per series: at most 2 * BUCKETS + 2 points reach the browser
LIVE_APPEND = 2000  # a poll with more new points than this gets the whole series again, cut down

Point = tuple[float, float]  # (step, value)


def minmax(points: Sequence[Point], buckets: int = BUCKETS) -> list[Point]:
    """``points`` cut down to at most ``2 * buckets + 2``: the first and the last point and, from
    each of ``buckets`` equal runs of consecutive points, its lowest and its highest, in order.
    A series that already fits is returned whole."""
    if buckets < 1:
        raise ValueError(f"buckets must be at least 1; got {buckets}")
    n = len(points)
    if n <= 2 * buckets + 2:
        return list(points)
    keep = {0, n - 1}
    bucket, low, high = 0, 0, 0  # point i lies in bucket i * buckets // n
    for i in range(1, n):
        if i * buckets // n != bucket:
            keep.update((low, high))
            bucket, low, high = i * buckets // n, i, i
        elif points[i][1] < points[low][1]:
            low = i
        elif points[i][1] > points[high][1]:
            high = i
    keep.update((low, high))
    return [points[i] for i in sorted(keep)]


@dataclass
class Series:
    """A job's metric series by name, each as parallel ``x`` and ``y`` lists, and how many points
    each has in all (``total``). ``last_id`` is the newest point read: pass it back as ``after``."""

    x: dict[str, list[float]] = field(default_factory=dict)
    y: dict[str, list[float]] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)
    last_id: int = 0
    whole: bool = True  # the whole series (cut down), not only the points after ``after``

    def as_json(self) -> dict[str, Any]:
        return {
            "series": {name: {"x": self.x[name], "y": self.y[name], "total": self.total[name]} for name in self.x},
            "last_id": self.last_id,
            "whole": self.whole,
        }


def job_series(
    session: Session,
    job_id: int,
    *,
    buckets: int = BUCKETS,
    after: int = 0,
) -> Series:
    """The metric points of job ``job_id`` by name, each series cut down with `minmax`. With
    ``after``, only the points recorded since the point of that id, uncut, unless there are more
    than `LIVE_APPEND` of them (then the whole series again: ``whole`` says which)."""
    where = [JobMetric.job_id == int(job_id), JobMetric.step.is_not(None), JobMetric.value.is_not(None)]
    if after:
        newer = session.scalar(select(func.count()).where(JobMetric.job_id == job_id, JobMetric.id > after))
        if newer is not None and newer <= LIVE_APPEND:
            query = select(JobMetric.id, JobMetric.name, JobMetric.step, JobMetric.value)
            rows = session.execute(query.where(*where, JobMetric.id > after).order_by(JobMetric.id))
            return _appended(rows, after)
    rows = _fetch(session, select(JobMetric.id, JobMetric.name, JobMetric.step, JobMetric.value).where(*where))
    grouped: dict[str, list[Point]] = {}
    last = after
    for point_id, name, step, value in rows:
        last = max(last, point_id)
        if math.isfinite(value):  # strict JSON has no NaN; the job stream holds none, but a chart must not break
            grouped.setdefault(name, []).append((float(step), float(value)))
    series = Series(last_id=last, whole=True)
    for name, points in grouped.items():
        kept = minmax(points, buckets)
        series.x[name], series.y[name] = [x for x, _ in kept], [y for _, y in kept]
        series.total[name] = len(points)
    return series


def _fetch(session: Session, query: Any) -> list[tuple[Any, ...]]:
    """The rows of ``query`` (ordered by id) as plain tuples from the database driver: a run's
    whole history is tens of thousands of rows, and building a SQLAlchemy row for each costs
    three times what the database does. Only integers are bound (the job id): inlined safely."""
    connection = session.connection()
    sql = query.order_by(JobMetric.id).compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
    cursor = connection.connection.cursor()
    try:
        cursor.execute(str(sql))
        return cursor.fetchall()
    finally:
        cursor.close()


def _appended(rows: Any, after: int) -> Series:
    """The points recorded after ``after``, uncut, grouped by name (a live chart appends them)."""
    series = Series(last_id=after, whole=False)
    for point_id, name, step, value in rows:
        series.last_id = max(series.last_id, point_id)
        if math.isfinite(value):
            series.x.setdefault(name, []).append(float(step))
            series.y.setdefault(name, []).append(float(value))
            series.total[name] = series.total.get(name, 0) + 1
    return series

"""The project's inference usage: per caller (inference key or user), per deployment, per UTC
day, summed from the rows the serving processes flush (`modelworks.serve.metering`), with an
estimated charge from the configured prices — the basis of an invoice."""

from __future__ import annotations

import csv
import io
from datetime import date
from itertools import zip_longest
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelworks.platform.db.models import Project, User
from modelworks.platform.db.serving import InferenceKey, InferenceUsage
from modelworks.platform.settings import Settings

# Upper bounds (seconds) of the latency histogram's buckets; a last bucket counts the rest. The
# serving processes' meters count into these.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

COLUMNS = ("day", "key_id", "key_name", "user", "deployment", "requests", "rows", "errors", "mean_latency_ms", "charge")


def charge(settings: Settings, billable_requests: int, rows: int) -> float:
    return round(billable_requests / 1000 * settings.price_1k_requests + rows / 1000 * settings.price_1k_rows, 6)


def usage_rows(
    session: Session,
    settings: Settings,
    project: Project,
    since: date | None = None,
    until: date | None = None,
    key_id: str | None = None,
) -> list[dict[str, Any]]:
    """One row per (day, caller, deployment), oldest day first. ``requests`` counts every
    request, ``errors`` those answered with an error status (by status); only the others are
    charged."""
    query = select(InferenceUsage).where(InferenceUsage.project_id == project.id)
    if since is not None:
        query = query.where(InferenceUsage.day >= since.isoformat())
    if until is not None:
        query = query.where(InferenceUsage.day <= until.isoformat())
    if key_id is not None:
        query = query.where(InferenceUsage.key_id == key_id)
    sums: dict[tuple[str, str | None, int | None, str], dict[str, Any]] = {}
    for u in session.scalars(query):
        empty = {"requests": 0, "answered": 0, "rows": 0, "errors": {}, "latency_sum_s": 0.0, "buckets": []}
        row = sums.setdefault((u.day, u.key_id, u.user_id, u.deployment), empty)
        row["requests"] += u.requests
        row["answered"] += u.answered
        row["rows"] += u.rows
        row["latency_sum_s"] += u.latency_sum_s
        row["buckets"] = [a + b for a, b in zip_longest(row["buckets"], u.latency_buckets, fillvalue=0)]
        for status, n in u.errors.items():
            row["errors"][status] = row["errors"].get(status, 0) + n
    keys = {k.id: k.name for k in session.scalars(select(InferenceKey).where(InferenceKey.project_id == project.id))}
    user_ids = {uid for (_, _, uid, _) in sums if uid is not None}
    users = {u.id: u.name for u in session.scalars(select(User).where(User.id.in_(user_ids)))} if user_ids else {}
    out = []
    for (day, kid, uid, deployment), s in sorted(sums.items(), key=lambda item: tuple(str(p) for p in item[0])):
        out.append(
            {
                "day": day,
                "key_id": kid,
                "key_name": keys.get(kid) if kid else None,
                "user": users.get(uid, str(uid)) if uid is not None else None,
                "deployment": deployment,
                "requests": s["requests"],
                "rows": s["rows"],
                "errors": dict(sorted(s["errors"].items())),
                "mean_latency_ms": round(1000 * s["latency_sum_s"] / s["requests"], 3) if s["requests"] else 0.0,
                "latency_buckets": s["buckets"],
                "charge": charge(settings, s["answered"], s["rows"]),
            }
        )
    return out


def usage(
    session: Session,
    settings: Settings,
    project: Project,
    since: date | None = None,
    until: date | None = None,
    key_id: str | None = None,
) -> dict[str, Any]:
    rows = usage_rows(session, settings, project, since, until, key_id)
    return {
        "project": project.name,
        "prices": {"per_1k_requests": settings.price_1k_requests, "per_1k_rows": settings.price_1k_rows},
        "latency_bounds_s": list(LATENCY_BUCKETS_S),
        "rows": rows,
        "requests": sum(r["requests"] for r in rows),
        "charge": round(sum(r["charge"] for r in rows), 6),
    }


def to_csv(rows: list[dict[str, Any]]) -> str:
    """The usage rows as CSV (errors as ``status:count`` pairs separated by spaces)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        errors = " ".join(f"{status}:{n}" for status, n in r["errors"].items())
        writer.writerow(
            [
                r["day"],
                r["key_id"] or "",
                r["key_name"] or "",
                r["user"] or "",
                r["deployment"],
                r["requests"],
                r["rows"],
                errors,
                r["mean_latency_ms"],
                r["charge"],
            ]
        )
    return buffer.getvalue()

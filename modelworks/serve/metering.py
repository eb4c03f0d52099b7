"""Metering of inference requests per caller and deployment, and the per-key limits.

`Meter.record` counts a request in memory (requests, rows, errors by status, a latency
histogram) under (project, caller, deployment, UTC day); a background thread writes what it has
to the database every ``interval_s`` seconds as new `InferenceUsage` rows, which readers sum.
Rows are only ever inserted, so any number of replicas meter into one database without
contending for a row.

The loss window: a process killed without warning (``kill -9``, a power cut) loses at most
the requests it counted since its last successful flush began — ``interval_s`` seconds of
traffic plus the time one flush takes. A flush that fails (the database is away) keeps its
counts for the next one; a clean stop flushes everything.

`RateLimiter` is a token bucket per key (``rate_limit`` requests per minute, bursts up to the
same number); it is kept per serving process, so N replicas allow up to N times the limit
between them. A key's quota (answered requests per UTC day) is checked against the database's total
for the day as of the last flush plus what this process counted since, so across replicas it
can be overrun by at most one flush interval's traffic.
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from modelworks.platform.db.models import utcnow
from modelworks.platform.db.serving import InferenceUsage
from modelworks.platform.inference_usage import LATENCY_BUCKETS_S

log = logging.getLogger("modelworks.serve.metering")

FLUSH_INTERVAL_S = 2.0


@dataclass(frozen=True)
class Caller:
    """Who called: an inference key (``key_id``) or a user's token (``user_id``), of a project."""

    project_id: int
    key_id: str | None = None
    user_id: int | None = None
    rate_limit: int | None = None  # requests per minute
    quota: int | None = None  # requests per UTC day

    @property
    def label(self) -> str:
        return f"key:{self.key_id}" if self.key_id is not None else f"user:{self.user_id}"


@dataclass
class Counts:
    requests: int = 0
    answered: int = 0  # requests answered without an error status: what quotas and charges count
    rows: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latency_sum_s: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))

    def add(self, other: Counts) -> None:
        self.requests += other.requests
        self.answered += other.answered
        self.rows += other.rows
        self.errors.update(other.errors)
        self.latency_sum_s += other.latency_sum_s
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]


# (project id, key id, user id, deployment, day)
Slot = tuple[int, str | None, int | None, str, str]


def today(now: datetime | None = None) -> str:
    return (now or utcnow()).strftime("%Y-%m-%d")


def seconds_to_midnight(now: datetime | None = None) -> int:
    now = now or utcnow()
    midnight = datetime(now.year, now.month, now.day, tzinfo=timezone.utc) + timedelta(days=1)
    return max(1, math.ceil((midnight - now).total_seconds()))


class Meter:
    """Counts requests in memory and flushes them to the database (see the module docstring)."""

    def __init__(self, sessions: Callable[[], Session], replica: str, interval_s: float = FLUSH_INTERVAL_S) -> None:
        self.sessions = sessions
        self.replica = replica
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._pending: dict[Slot, Counts] = defaultdict(Counts)
        self._flushed_today: dict[str, int] = {}  # key id -> requests today in the database, as of the last flush
        self._day = today()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, caller: Caller, deployment: str, rows: int, status: int, latency_s: float) -> None:
        slot = (caller.project_id, caller.key_id, caller.user_id, deployment, today())
        with self._lock:
            counts = self._pending[slot]
            counts.requests += 1
            counts.answered += status < 400
            counts.rows += rows if status < 400 else 0
            if status >= 400:
                counts.errors[str(status)] += 1
            counts.latency_sum_s += latency_s
            counts.buckets[bisect.bisect_left(LATENCY_BUCKETS_S, latency_s)] += 1

    def used_today(self, key_id: str) -> int:
        """Requests answered to the key today (refusals do not count): the database's total at the
        last flush, plus ours since."""
        day = today()
        with self._lock:
            base = self._flushed_today.get(key_id, 0) if self._day == day else 0
            return base + sum(c.answered for s, c in self._pending.items() if s[1] == key_id and s[4] == day)

    def watch_quota(self, key_id: str) -> None:
        """Keep the key's daily total from the database fresh (read now and at every flush)."""
        with self._lock:
            known = key_id in self._flushed_today
            self._flushed_today.setdefault(key_id, 0)
        if not known:
            self._refresh([key_id])

    def flush(self) -> int:
        """Write the pending counts as new rows; returns how many requests were written. On a
        database error the counts are kept for the next flush."""
        with self._lock:
            pending, self._pending = self._pending, defaultdict(Counts)
        if pending:
            try:
                with self.sessions() as session:
                    for (project_id, key_id, user_id, deployment, day), c in pending.items():
                        session.add(
                            InferenceUsage(
                                project_id=project_id,
                                day=day,
                                deployment=deployment,
                                key_id=key_id,
                                user_id=user_id,
                                requests=c.requests,
                                answered=c.answered,
                                rows=c.rows,
                                errors=dict(c.errors),
                                latency_sum_s=c.latency_sum_s,
                                latency_buckets=c.buckets,
                                replica=self.replica,
                            )
                        )
                    session.commit()
            except SQLAlchemyError:
                log.warning("metering flush failed; its counts are kept for the next one", exc_info=True)
                with self._lock:
                    for slot, c in pending.items():
                        self._pending[slot].add(c)
                return 0
        self._refresh(list(self._flushed_today))
        return sum(c.requests for c in pending.values())

    def _refresh(self, key_ids: list[str]) -> None:
        if not key_ids:
            return
        day = today()
        try:
            with self.sessions() as session:
                totals = dict(
                    session.execute(
                        select(InferenceUsage.key_id, func.sum(InferenceUsage.answered))
                        .where(InferenceUsage.day == day, InferenceUsage.key_id.in_(key_ids))
                        .group_by(InferenceUsage.key_id)
                    ).all()
                )
        except SQLAlchemyError:
            log.warning("could not read today's usage for quotas", exc_info=True)
            return
        with self._lock:
            self._day = day
            for key_id in key_ids:
                self._flushed_today[key_id] = int(totals.get(key_id) or 0)

    # --- the background flusher

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="metering", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.flush()

    def stop(self) -> None:
        """Stop the flusher and write what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.flush()


class RateLimiter:
    """A token bucket per key: ``limit`` requests per minute, bursts of up to ``limit``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, at)

    def take(self, key_id: str, limit: int, now: float | None = None) -> float:
        """0 if the request may go ahead (a token is taken), else the seconds until it may."""
        now = time.monotonic() if now is None else now
        rate = limit / 60.0
        with self._lock:
            tokens, at = self._buckets.get(key_id, (float(limit), now))
            tokens = min(float(limit), tokens + (now - at) * rate)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / rate

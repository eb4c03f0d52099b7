"""The continual-learning tables (revision 0007_continual): policies and the windows they saw.

Beside `modelworks.platform.db.models`, on the same declarative `Base`; `env.py` imports it so
that the metadata is whole.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from modelworks.platform.db.models import NAME_LENGTH, Base, Dataset, RegisteredModel, User, utcnow

__all__ = ["ContinualPolicy", "ContinualWindow"]

TRIGGERS = ("rows", "drift", "interval")
VERSIONING = ("cumulative", "increments")


class ContinualPolicy(Base):
    """ "When new labelled rows arrive in ``dataset`` (``min_rows`` of them, or a drift, or every
    ``interval_s``), continue the version ``alias`` points at on them, gate it, and move the alias
    if it passes." ``last_version`` is the dataset version the policy has consumed up to;
    ``pending_job_id`` the continue job in flight (at most one); ``errors`` the live error stream
    of the latest rows (0/1, or absolute errors for regression) its drift detector reads."""

    __tablename__ = "continual_policies"
    __table_args__ = (
        UniqueConstraint("project_id", "name"),
        CheckConstraint("trigger IN ('rows', 'drift', 'interval')", name="trigger"),
        CheckConstraint("versioning IN ('cumulative', 'increments')", name="versioning"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(NAME_LENGTH))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(16))
    min_rows: Mapped[int] = mapped_column(default=1)
    interval_s: Mapped[int | None]
    versioning: Mapped[str] = mapped_column(String(16), default="cumulative")
    detector: Mapped[str] = mapped_column(String(16), default="adwin")
    gate: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    train: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(default=True)
    last_version: Mapped[int] = mapped_column(default=0)
    last_rows: Mapped[int] = mapped_column(default=0)
    last_run_at: Mapped[datetime | None]
    pending_job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    errors: Mapped[list[float]] = mapped_column(JSON, default=list)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    model: Mapped[RegisteredModel] = relationship(lazy="joined")
    dataset: Mapped[Dataset] = relationship(lazy="joined")
    created_by: Mapped[User | None] = relationship(lazy="joined")


class ContinualWindow(Base):
    """One window of new data a continue job saw: the current version's prequential metric on it
    (tested before any training), the drift detector's verdict, and, when it trained, the
    candidate version and the gate's decision with its numbers. Never changed once written."""

    __tablename__ = "continual_windows"
    __table_args__ = (
        CheckConstraint("outcome IN ('promoted', 'rejected', 'tested', 'failed')", name="outcome"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("continual_policies.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), unique=True)
    model: Mapped[str] = mapped_column(String(NAME_LENGTH))
    alias: Mapped[str] = mapped_column(String(NAME_LENGTH))
    parent_version: Mapped[int | None] = mapped_column(Integer)
    candidate_version: Mapped[int | None] = mapped_column(Integer)
    dataset: Mapped[str] = mapped_column(String(200))  # dataset:NAME@VERSION
    window_start: Mapped[int] = mapped_column(default=0)
    rows: Mapped[int] = mapped_column(default=0)
    metric: Mapped[str | None] = mapped_column(String(32))  # accuracy, or mae for regression
    prequential: Mapped[float | None] = mapped_column(Float)  # the current version on the window, before training
    sliding: Mapped[float | None] = mapped_column(Float)  # the same over the latest rows of the live stream
    drift: Mapped[bool] = mapped_column(default=False)
    drift_rows: Mapped[list[int]] = mapped_column(JSON, default=list)  # rows of the window where it was flagged
    outcome: Mapped[str] = mapped_column(String(16))
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the gate's decision, all its numbers
    error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

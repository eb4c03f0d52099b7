"""The tables of data arrival (revisions 0008_streams, 0009_feedback_age): appended windows, and serving's request log.

Beside `modelworks.platform.db.models`, on the same declarative `Base`; `env.py` imports it so that
the metadata is whole.

* `DatasetAppend`: what a dataset version made by appending holds beyond its parent: how many
  rows, from where (``origin``: http, redis, folder, feedback; ``source_key``: which stream,
  folder or deployment) and the offsets of the window (a stream's first and last entry id, a
  file's name). It commits in the same transaction as its version, so a window is either stored
  with its offsets or not at all; that is what lets a consumer acknowledge only what is stored.
* `RequestLogSetting`: a deployment's opt-in to log its requests, and the dataset its labelled
  requests flow into.
* `LoggedRequest`: one logged input row and its prediction, sealed with the data key; later its
  label (sealed too), and the dataset version it was appended to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from modelworks.platform.db.models import NAME_LENGTH, Base, DatasetVersion, User, utcnow
from modelworks.platform.db.serving import Deployment

__all__ = ["DatasetAppend", "LoggedRequest", "RequestLogSetting"]


class DatasetAppend(Base):
    """How an appended version came to be: its parent, its new rows and their offsets."""

    __tablename__ = "dataset_appends"
    __table_args__ = (Index("ix_dataset_appends_source", "dataset_id", "source_key", "first_offset"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id", ondelete="CASCADE"), unique=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    base_version: Mapped[int | None]  # the version whose rows come first; None for the first window
    rows_appended: Mapped[int]
    origin: Mapped[str] = mapped_column(String(16))  # http, redis, folder, feedback
    source_key: Mapped[str] = mapped_column(String(300))  # e.g. "redis:clicks/modelworks", "folder:/srv/in"
    first_offset: Mapped[str | None] = mapped_column(String(300))  # first stream entry id, or the file name
    last_offset: Mapped[str | None] = mapped_column(String(300))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    version: Mapped[DatasetVersion] = relationship(lazy="joined")


class RequestLogSetting(Base):
    """A deployment's request logging: on or off, and the dataset its labelled requests go to."""

    __tablename__ = "request_log_settings"

    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    dataset: Mapped[str] = mapped_column(String(NAME_LENGTH))
    window_rows: Mapped[int] = mapped_column(default=1)  # labelled rows gathered before a version is stored
    max_age_s: Mapped[float | None] = mapped_column(Float, default=None)  # ... or once the oldest waited this long
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))  # stores timed windows

    deployment: Mapped[Deployment] = relationship(lazy="joined")
    set_by: Mapped[User | None] = relationship()


class LoggedRequest(Base):
    """One row of a logged request: ``sealed`` is the crypto-sealed JSON ``{"input", "prediction"}``."""

    __tablename__ = "logged_requests"
    __table_args__ = (UniqueConstraint("request_id", "row"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), index=True)
    request_id: Mapped[str] = mapped_column(String(32))
    row: Mapped[int] = mapped_column(Integer)
    model_version: Mapped[str] = mapped_column(String(32))
    sealed: Mapped[str] = mapped_column(Text)  # base64 of `modelworks.platform.crypto.seal`
    label: Mapped[str | None] = mapped_column(Text)  # sealed JSON of the true label, once given
    labelled_at: Mapped[datetime | None]
    appended_version: Mapped[int | None]  # the stream dataset's version that holds the joined row
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

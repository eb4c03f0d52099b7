"""The serving tables (revision 0006_serving): deployments, inference keys and metered usage.

Beside `modelworks.platform.db.models`, on the same declarative `Base`; `env.py` imports both so
that the metadata is whole.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from modelworks.platform.db.models import NAME_LENGTH, Base, RegisteredModel, User, utcnow

__all__ = ["Deployment", "InferenceKey", "InferenceUsage", "RegisteredModel", "User"]


class Deployment(Base):
    """A registered model served under a name: following an alias or one version, with an optional canary."""

    __tablename__ = "deployments"
    __table_args__ = (
        UniqueConstraint("project_id", "name"),
        CheckConstraint("(alias IS NULL) <> (version IS NULL)", name="target"),
        CheckConstraint("canary_percent >= 0 AND canary_percent <= 100", name="canary_percent"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    alias: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    version: Mapped[int | None]
    canary_version: Mapped[int | None]
    canary_percent: Mapped[float] = mapped_column(Float, default=0.0)
    runtime: Mapped[str] = mapped_column(String(16), default="torch")
    precision: Mapped[str] = mapped_column(String(8), default="fp32", server_default="fp32")  # torch: fp32 or bf16
    max_batch: Mapped[int] = mapped_column(default=32)
    max_delay_ms: Mapped[float] = mapped_column(Float, default=5.0)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    model: Mapped[RegisteredModel] = relationship(lazy="joined")
    created_by: Mapped[User | None] = relationship(lazy="joined")


class InferenceKey(Base):
    """An inference key of a project, ``mwk_<id>_<secret>``, kept only as a SHA-256 digest."""

    __tablename__ = "inference_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(32))
    deployments: Mapped[list[str] | None] = mapped_column(JSON)  # the only ones it may call; None: all
    rate_limit: Mapped[int | None]  # requests per minute
    quota: Mapped[int | None]  # answered requests per UTC day
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class InferenceUsage(Base):
    """One flush of a serving process's counts for a caller (``key_id``, or a user's token:
    ``user_id``; not foreign keys: usage outlives them), deployment and UTC day. Rows are only
    ever inserted, so replicas never contend; readers sum them."""

    __tablename__ = "inference_usage"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(Integer, index=True)
    day: Mapped[str] = mapped_column(String(10), index=True)  # YYYY-MM-DD, UTC
    deployment: Mapped[str] = mapped_column(String(NAME_LENGTH))
    key_id: Mapped[str | None] = mapped_column(String(32), index=True)
    user_id: Mapped[int | None] = mapped_column(Integer)
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    answered: Mapped[int] = mapped_column(BigInteger, default=0)  # without an error status; charged
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    errors: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)  # {"429": 3, ...}
    latency_sum_s: Mapped[float] = mapped_column(Float, default=0.0)
    latency_buckets: Mapped[list[int]] = mapped_column(JSON, default=list)  # counts per LATENCY_BUCKETS_S bound
    replica: Mapped[str] = mapped_column(String(64))
    flushed_at: Mapped[datetime] = mapped_column(default=utcnow)

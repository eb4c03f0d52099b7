"""The platform's tables as typed SQLAlchemy models.

Changing a model needs a new Alembic revision in ``migrations/versions`` (a test compares the
migrated schema with these models). The job kinds come from `modelworks.job_kinds`; after the
revisions, the migrations bring the ``jobs.kind`` check constraint in step with them (a repeatable
step, `sync_job_kinds` in ``migrations/env.py``), so a new kind needs no revision. Times are
stored in UTC and always read back timezone-aware.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from modelworks.job_kinds import KIND_NAMES

# Deterministic constraint names, the same on SQLite and PostgreSQL, so migrations can name them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
NAME_LENGTH = 64


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no zone, so we add it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; use an aware one, e.g. datetime.now(timezone.utc)")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """An API token. The secret itself is never stored: only its SHA-256, and a short prefix
    that lets a user tell their tokens apart."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # public; part of the token
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    secret_sha256: Mapped[str] = mapped_column(String(64))  # hex digest of the whole token
    prefix: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class Project(Base):
    # AUTOINCREMENT: a deleted project's id is never reused, so its audit entries never
    # attach to a later project (PostgreSQL sequences never reuse ids anyway).
    __tablename__ = "projects"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    created_by: Mapped[User | None] = relationship(lazy="joined")


class Membership(Base):
    """A user's role in a project; at most one per user and project (the primary key)."""

    __tablename__ = "memberships"
    __table_args__ = (CheckConstraint("role IN ('viewer', 'editor', 'owner')", name="role"),)

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    user: Mapped[User] = relationship(lazy="joined")


class AuditLog(Base):
    """Who did what, when. Entries outlive what they describe: the actor's name and the
    project's id are copied in rather than referenced with cascading keys."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(NAME_LENGTH))  # the name at the time; "system" for the service itself
    action: Mapped[str] = mapped_column(String(64))  # e.g. "project.create", "member.set", "token.revoke"
    project_id: Mapped[int | None] = mapped_column(Integer, index=True)
    target: Mapped[str] = mapped_column(String(200))  # e.g. "project:vision", "user:ada", "token:3f9a…"
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# --- jobs (revision 0003_jobs) ---

JOB_KINDS = KIND_NAMES  # declared in modelworks.job_kinds, one entry per kind
JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")


def job_kind_check() -> str:
    """The ``jobs.kind`` check: one of the declared kinds (kept in step by the migrations' `sync_job_kinds`)."""
    return "kind IN (" + ", ".join(f"'{k}'" for k in JOB_KINDS) + ")"


class Job(Base):
    """A unit of work in the durable queue. A worker owns a running job through ``claim_token``
    (a fresh value per claim) for as long as it keeps ``heartbeat_at`` recent; a job whose
    heartbeat is older than the lease is reclaimed by any worker."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(job_kind_check(), name="kind"),
        CheckConstraint("state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="state"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    executor: Mapped[str] = mapped_column(String(16), default="local")
    gpus: Mapped[int] = mapped_column(default=0)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=3)
    timeout_s: Mapped[int | None]
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    run_dir: Mapped[str | None] = mapped_column(String(1000))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    worker_id: Mapped[str | None] = mapped_column(String(100))
    claim_token: Mapped[str | None] = mapped_column(String(32))
    pid: Mapped[int | None]
    heartbeat_at: Mapped[datetime | None]
    attempt_started_at: Mapped[datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    cpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)

    created_by: Mapped[User | None] = relationship(lazy="joined")


class JobLog(Base):
    """One line of a job's output, numbered from 1 across all its attempts."""

    __tablename__ = "job_logs"
    __table_args__ = (UniqueConstraint("job_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    seq: Mapped[int]
    at: Mapped[datetime] = mapped_column(default=utcnow)
    line: Mapped[str] = mapped_column(Text)


class JobMetric(Base):
    """A metric point a job reported while it ran (step None: a final, whole-run value)."""

    __tablename__ = "job_metrics"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    step: Mapped[int | None]
    epoch: Mapped[int | None]
    name: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Dataset(Base):
    """A project's named data set; its content lives in immutable `DatasetVersion` rows."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    created_by: Mapped[User | None] = relationship(lazy="joined")


class DatasetVersion(Base):
    """One upload (or built-in registration) of a data set. Never changed after it is made,
    except ``key_id`` when a key rotation re-encrypts its file."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per data set
    sha256: Mapped[str] = mapped_column(String(64))  # of the plaintext
    size: Mapped[int] = mapped_column(BigInteger)  # plaintext bytes
    format: Mapped[str] = mapped_column(String(16))  # csv, parquet, jsonl, images-zip, builtin
    source: Mapped[str] = mapped_column(String(200))  # the uploaded file name, or builtin:NAME
    schema: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{"name", "dtype", "type"}]
    rows: Mapped[int] = mapped_column(BigInteger)
    preview: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"rows": [...]} (+ "classes" for images)
    encrypted: Mapped[bool]
    key_id: Mapped[str | None] = mapped_column(String(32))
    storage_path: Mapped[str | None] = mapped_column(String(500))  # key in the artifact store; None for built-ins
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    dataset: Mapped[Dataset] = relationship(lazy="joined")
    created_by: Mapped[User | None] = relationship(lazy="joined")


# --- runs and the model registry (revision 0004_registry) ---


class Run(Base):
    """A finished training run, recorded once when its job succeeds. ``artifacts`` is the
    manifest taken then: ``[{"path", "size", "sha256"}]`` for every file of the run folder, so a
    later change to a file is caught when it is read. The files live in the artifact store under
    ``storage_prefix`` (NULL for runs recorded before revision 0005: read from ``run_dir``)."""

    __tablename__ = "runs"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), unique=True)
    run_dir: Mapped[str] = mapped_column(String(1000))  # where the job wrote it, on the machine that ran it
    storage_prefix: Mapped[str | None] = mapped_column(String(1000))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)  # the resolved experiment config
    lineage: Mapped[dict[str, Any]] = mapped_column(
        JSON
    )  # {"source", and "dataset", "version", "sha256" for a dataset}
    code_version: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"git_commit", "modelworks"}
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)  # the report's final metrics
    artifacts: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RegisteredModel(Base):
    """A named model of a project; its content lives in immutable `ModelVersion` rows."""

    __tablename__ = "registered_models"
    __table_args__ = (UniqueConstraint("project_id", "name"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    created_by: Mapped[User | None] = relationship(lazy="joined")


class ModelVersion(Base):
    """A run frozen as version 1, 2, ... of a model: its files copied into the artifact store
    under ``storage_prefix`` with their SHA-256 in ``artifacts``. Never changed after it is made."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    storage_prefix: Mapped[str] = mapped_column(String(500))
    artifacts: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    model: Mapped[RegisteredModel] = relationship(lazy="joined")
    created_by: Mapped[User | None] = relationship(lazy="joined")


class ModelAlias(Base):
    """A movable name (``staging``, ``production``, ...) for one version of a model."""

    __tablename__ = "model_aliases"
    __table_args__ = (UniqueConstraint("model_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    version: Mapped[ModelVersion] = relationship(lazy="joined")
    updated_by: Mapped[User | None] = relationship(lazy="joined")

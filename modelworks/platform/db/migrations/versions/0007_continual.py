"""Continual learning: policies on registered models and the windows of new data they saw.

Revision ID: 0007_continual
Revises: 0006_serving
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_continual"
down_revision = "0006_serving"
branch_labels = None
depends_on = None


def utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _fk(table: str, column: str, other: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{other}.id"], name=op.f(f"fk_{table}_{column}_{other}"), ondelete=ondelete
    )


def upgrade() -> None:
    p = "continual_policies"
    op.create_table(
        p,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("min_rows", sa.Integer(), nullable=False),
        sa.Column("interval_s", sa.Integer(), nullable=True),
        sa.Column("versioning", sa.String(length=16), nullable=False),
        sa.Column("detector", sa.String(length=16), nullable=False),
        sa.Column("gate", sa.JSON(), nullable=False),
        sa.Column("train", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("last_version", sa.Integer(), nullable=False),
        sa.Column("last_rows", sa.Integer(), nullable=False),
        sa.Column("last_run_at", utc(), nullable=True),
        sa.Column("pending_job_id", sa.Integer(), nullable=True),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", utc(), nullable=False),
        sa.CheckConstraint("trigger IN ('rows', 'drift', 'interval')", name=op.f("ck_continual_policies_trigger")),
        sa.CheckConstraint(
            "versioning IN ('cumulative', 'increments')", name=op.f("ck_continual_policies_versioning")
        ),
        _fk(p, "project_id", "projects", "CASCADE"),
        _fk(p, "model_id", "registered_models", "CASCADE"),
        _fk(p, "dataset_id", "datasets", "CASCADE"),
        _fk(p, "pending_job_id", "jobs", "SET NULL"),
        _fk(p, "created_by_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_continual_policies")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_continual_policies_project_id")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_continual_policies_project_id"), p, ["project_id"])
    w = "continual_windows"
    op.create_table(
        w,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("policy_id", sa.Integer(), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("parent_version", sa.Integer(), nullable=True),
        sa.Column("candidate_version", sa.Integer(), nullable=True),
        sa.Column("dataset", sa.String(length=200), nullable=False),
        sa.Column("window_start", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=True),
        sa.Column("prequential", sa.Float(), nullable=True),
        sa.Column("sliding", sa.Float(), nullable=True),
        sa.Column("drift", sa.Boolean(), nullable=False),
        sa.Column("drift_rows", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("decision", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.Column("created_at", utc(), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('promoted', 'rejected', 'tested', 'failed')", name=op.f("ck_continual_windows_outcome")
        ),
        _fk(w, "project_id", "projects", "CASCADE"),
        _fk(w, "policy_id", "continual_policies", "CASCADE"),
        _fk(w, "job_id", "jobs", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_continual_windows")),
        sa.UniqueConstraint("job_id", name=op.f("uq_continual_windows_job_id")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_continual_windows_project_id"), w, ["project_id"])
    op.create_index(op.f("ix_continual_windows_policy_id"), w, ["policy_id"])


def downgrade() -> None:
    op.drop_table("continual_windows")
    op.drop_table("continual_policies")

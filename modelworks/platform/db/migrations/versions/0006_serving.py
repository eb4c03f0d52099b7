"""Serving: deployments of registered models, inference keys and their metered usage.

Revision ID: 0006_serving
Revises: 0005_run_storage
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_serving"
down_revision = "0005_run_storage"
branch_labels = None
depends_on = None


def utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("canary_version", sa.Integer(), nullable=True),
        sa.Column("canary_percent", sa.Float(), nullable=False),
        sa.Column("runtime", sa.String(length=16), nullable=False),
        sa.Column("max_batch", sa.Integer(), nullable=False),
        sa.Column("max_delay_ms", sa.Float(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("updated_at", utc(), nullable=False),
        sa.CheckConstraint("(alias IS NULL) <> (version IS NULL)", name=op.f("ck_deployments_target")),
        sa.CheckConstraint("canary_percent >= 0 AND canary_percent <= 100", name=op.f("ck_deployments_canary_percent")),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_deployments_project_id_projects"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name=op.f("fk_deployments_model_id_registered_models"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_deployments_created_by_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_deployments_project_id")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_deployments_project_id"), "deployments", ["project_id"])
    op.create_table(
        "inference_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("deployments", sa.JSON(), nullable=True),
        sa.Column("rate_limit", sa.Integer(), nullable=True),
        sa.Column("quota", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("expires_at", utc(), nullable=True),
        sa.Column("revoked_at", utc(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_inference_keys_project_id_projects"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_inference_keys_created_by_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inference_keys")),
    )
    op.create_index(op.f("ix_inference_keys_project_id"), "inference_keys", ["project_id"])
    op.create_table(
        "inference_usage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("deployment", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("answered", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("latency_sum_s", sa.Float(), nullable=False),
        sa.Column("latency_buckets", sa.JSON(), nullable=False),
        sa.Column("replica", sa.String(length=64), nullable=False),
        sa.Column("flushed_at", utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inference_usage")),
    )
    op.create_index(op.f("ix_inference_usage_project_id"), "inference_usage", ["project_id"])
    op.create_index(op.f("ix_inference_usage_day"), "inference_usage", ["day"])
    op.create_index(op.f("ix_inference_usage_key_id"), "inference_usage", ["key_id"])


def downgrade() -> None:
    op.drop_table("inference_usage")
    op.drop_table("inference_keys")
    op.drop_table("deployments")

"""Streams: appended dataset windows with their offsets, serving request logs and feedback.

Revision ID: 0008_streams
Revises: 0007_continual
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_streams"
down_revision = "0007_continual"
branch_labels = None
depends_on = None


def utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dataset_appends",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=True),
        sa.Column("rows_appended", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("source_key", sa.String(length=300), nullable=False),
        sa.Column("first_offset", sa.String(length=300), nullable=True),
        sa.Column("last_offset", sa.String(length=300), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["dataset_versions.id"],
            name=op.f("fk_dataset_appends_version_id_dataset_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_dataset_appends_dataset_id_datasets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_appends")),
        sa.UniqueConstraint("version_id", name=op.f("uq_dataset_appends_version_id")),
    )
    op.create_index("ix_dataset_appends_source", "dataset_appends", ["dataset_id", "source_key", "first_offset"])
    op.create_table(
        "request_log_settings",
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("dataset", sa.String(length=64), nullable=False),
        sa.Column("window_rows", sa.Integer(), nullable=False),
        sa.Column("updated_at", utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_request_log_settings_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("deployment_id", name=op.f("pk_request_log_settings")),
    )
    op.create_table(
        "logged_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.String(length=32), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("labelled_at", utc(), nullable=True),
        sa.Column("appended_version", sa.Integer(), nullable=True),
        sa.Column("created_at", utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_logged_requests_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logged_requests")),
        sa.UniqueConstraint("request_id", "row", name=op.f("uq_logged_requests_request_id")),
    )
    op.create_index(op.f("ix_logged_requests_deployment_id"), "logged_requests", ["deployment_id"])


def downgrade() -> None:
    op.drop_table("logged_requests")
    op.drop_table("request_log_settings")
    op.drop_table("dataset_appends")

"""Feedback windows that close on a timer: a request log's ``max_age_s``, and who set it.

Revision ID: 0009_feedback_age
Revises: 0008_streams
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_feedback_age"
down_revision = "0008_streams"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("request_log_settings") as batch:
        batch.add_column(sa.Column("max_age_s", sa.Float(), nullable=True))
        batch.add_column(sa.Column("set_by_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_request_log_settings_set_by_id_users"), "users", ["set_by_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("request_log_settings") as batch:
        batch.drop_constraint(op.f("fk_request_log_settings_set_by_id_users"), type_="foreignkey")
        batch.drop_column("set_by_id")
        batch.drop_column("max_age_s")

"""A deployment's precision: fp32, or bf16 (the torch runtime under bfloat16 autocast).

Revision ID: 0010_deployment_precision
Revises: 0009_feedback_age
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_deployment_precision"
down_revision = "0009_feedback_age"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("precision", sa.String(8), nullable=False, server_default="fp32"))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("precision")

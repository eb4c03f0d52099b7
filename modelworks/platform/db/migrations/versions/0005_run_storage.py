"""Runs live in the artifact store: each run row names the key prefix of its files.

Runs recorded before this revision keep ``storage_prefix`` NULL and are read from their
``run_dir`` on the local disk, as before.

Revision ID: 0005_run_storage
Revises: 0004_registry
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_run_storage"
down_revision = "0004_registry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("storage_prefix", sa.String(length=1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("storage_prefix")

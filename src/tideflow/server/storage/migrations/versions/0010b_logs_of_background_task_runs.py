"""Logs of background task runs: a log record may belong to a task run alone (no flow run).

Revision ID: 0010b
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

from tideflow.server.storage.types import UuidType

revision = "0010b"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite cannot drop a NOT NULL in place: batch mode rebuilds the table (PostgreSQL alters it).
    with op.batch_alter_table("logs") as batch:
        batch.alter_column("flow_run_id", existing_type=UuidType, nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM logs WHERE flow_run_id IS NULL")
    with op.batch_alter_table("logs") as batch:
        batch.alter_column("flow_run_id", existing_type=UuidType, nullable=False)

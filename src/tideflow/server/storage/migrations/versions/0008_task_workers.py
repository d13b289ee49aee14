"""Background task runs: the claiming task worker, its last heartbeat, and the delivery count.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tideflow.server.storage.types import UTCDateTime, UuidType

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs (no table rebuild on SQLite): nullable, or with a server default.
    op.add_column("task_runs", sa.Column("worker_id", UuidType, nullable=True))
    op.add_column("task_runs", sa.Column("worker_heartbeat", UTCDateTime, nullable=True))
    op.add_column(
        "task_runs", sa.Column("deliveries", sa.Integer, nullable=False, server_default="0")
    )
    op.create_index("ix_task_runs_worker_id", "task_runs", ["worker_id"])


def downgrade() -> None:
    op.drop_index("ix_task_runs_worker_id", table_name="task_runs")
    with op.batch_alter_table("task_runs") as batch:
        batch.drop_column("deliveries")
        batch.drop_column("worker_heartbeat")
        batch.drop_column("worker_id")

"""Task runs: one row per task run with its current state and state history (docs/adr/0002), and
logs readable by task run.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tideflow.server.storage.types import JSONType, UTCDateTime, UuidType

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "task_runs",
        sa.Column("id", UuidType, nullable=False),
        sa.Column("flow_run_id", UuidType, nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("task_name", sa.String(200), nullable=False),
        sa.Column("tags", JSONType, nullable=False),
        sa.Column("parameters", JSONType, nullable=False),
        sa.Column("task_inputs", JSONType, nullable=False),
        sa.Column("state_type", sa.String(20), nullable=True),
        sa.Column("state_name", sa.String(100), nullable=True),
        sa.Column("state", JSONType, nullable=True),
        sa.Column("history", JSONType, nullable=False),
        sa.Column("run_count", sa.Integer, nullable=False),
        sa.Column("start_time", UTCDateTime, nullable=True),
        sa.Column("end_time", UTCDateTime, nullable=True),
        sa.Column("result_location", sa.String(2000), nullable=True),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.Column("updated", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["flow_run_id"],
            ["flow_runs.id"],
            name="fk_task_runs_flow_run_id_flow_runs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_task_runs"),
    )
    op.create_index("ix_task_runs_flow_run_id_created", "task_runs", ["flow_run_id", "created"])
    op.create_index("ix_task_runs_state_type", "task_runs", ["state_type"])
    op.create_index("ix_task_runs_task_name", "task_runs", ["task_name"])
    op.create_index("ix_task_runs_created", "task_runs", ["created"])
    op.create_index("ix_logs_task_run_id", "logs", ["task_run_id"])


def downgrade() -> None:
    op.drop_index("ix_logs_task_run_id", table_name="logs")
    op.drop_table("task_runs")

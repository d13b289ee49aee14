"""Initial schema: flows, flow runs, their state history, and run logs.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tideflow.server.storage.types import BigIntId, JSONType, UTCDateTime, UuidType

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_FLOW_RUN_INDEXES: list[tuple[str, list[str]]] = [
    ("ix_flow_runs_flow_id_created", ["flow_id", "created"]),
    ("ix_flow_runs_deployment_id", ["deployment_id"]),
    ("ix_flow_runs_state_type", ["state_type"]),
    ("ix_flow_runs_state_name", ["state_name"]),
    ("ix_flow_runs_created", ["created"]),
    ("ix_flow_runs_start_time", ["start_time"]),
    ("ix_flow_runs_expected_start_time", ["expected_start_time"]),
    ("ix_flow_runs_next_scheduled_start_time", ["next_scheduled_start_time"]),
    ("ix_flow_runs_parent_flow_run_id", ["parent_flow_run_id"]),
]


def upgrade() -> None:
    op.create_table(
        "flows",
        sa.Column("id", UuidType, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("tags", JSONType, nullable=False),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.Column("updated", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_flows"),
        sa.UniqueConstraint("name", name="uq_flows_name"),
    )
    op.create_table(
        "flow_runs",
        sa.Column("id", UuidType, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("flow_id", UuidType, nullable=False),
        sa.Column("deployment_id", UuidType, nullable=True),
        sa.Column("parameters", JSONType, nullable=False),
        sa.Column("tags", JSONType, nullable=False),
        sa.Column("state_id", UuidType, nullable=True),
        sa.Column("state_type", sa.String(20), nullable=True),
        sa.Column("state_name", sa.String(100), nullable=True),
        sa.Column("state_timestamp", UTCDateTime, nullable=True),
        sa.Column("state", JSONType, nullable=True),
        sa.Column("expected_start_time", UTCDateTime, nullable=True),
        sa.Column("next_scheduled_start_time", UTCDateTime, nullable=True),
        sa.Column("start_time", UTCDateTime, nullable=True),
        sa.Column("end_time", UTCDateTime, nullable=True),
        sa.Column("total_run_time", sa.Float(), nullable=False),
        sa.Column("run_count", sa.Integer(), nullable=False),
        sa.Column("parent_flow_run_id", UuidType, nullable=True),
        sa.Column("parent_task_run_id", UuidType, nullable=True),
        sa.Column("idempotency_key", sa.String(500), nullable=True),
        sa.Column("created_by", JSONType, nullable=True),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.Column("updated", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["flow_id"], ["flows.id"], name="fk_flow_runs_flow_id_flows", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_flow_runs"),
        sa.UniqueConstraint(
            "flow_id", "idempotency_key", name="uq_flow_runs_flow_id_idempotency_key"
        ),
    )
    for name, columns in _FLOW_RUN_INDEXES:
        op.create_index(name, "flow_runs", columns)
    op.create_table(
        "flow_run_states",
        sa.Column("id", UuidType, nullable=False),
        sa.Column("flow_run_id", UuidType, nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("timestamp", UTCDateTime, nullable=False),
        sa.Column("details", JSONType, nullable=False),
        sa.Column("data", JSONType, nullable=True),
        sa.ForeignKeyConstraint(
            ["flow_run_id"],
            ["flow_runs.id"],
            name="fk_flow_run_states_flow_run_id_flow_runs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_flow_run_states"),
    )
    op.create_index(
        "ix_flow_run_states_flow_run_id_timestamp", "flow_run_states", ["flow_run_id", "timestamp"]
    )
    op.create_table(
        "logs",
        sa.Column("id", BigIntId, autoincrement=True, nullable=False),
        sa.Column("flow_run_id", UuidType, nullable=False),
        sa.Column("task_run_id", UuidType, nullable=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("timestamp", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["flow_run_id"],
            ["flow_runs.id"],
            name="fk_logs_flow_run_id_flow_runs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_logs"),
    )
    op.create_index("ix_logs_flow_run_id_timestamp", "logs", ["flow_run_id", "timestamp"])
    op.create_index("ix_logs_timestamp", "logs", ["timestamp"])


def downgrade() -> None:
    op.drop_table("logs")
    op.drop_table("flow_run_states")
    op.drop_table("flow_runs")
    op.drop_table("flows")

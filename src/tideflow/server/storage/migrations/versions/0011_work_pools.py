"""Work pools, their queues and workers; deployments and flow runs point at a work queue.

Revision ID: 0011
Revises: 0010b
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tideflow.server.storage.types import JSONType, UTCDateTime, UuidType

revision = "0011"
down_revision = "0010b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "work_pools",
        sa.Column("id", UuidType, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("base_job_template", JSONType, nullable=False),
        sa.Column("concurrency_limit", sa.Integer, nullable=True),
        sa.Column("is_paused", sa.Boolean, nullable=False),
        sa.Column("default_queue_id", UuidType, nullable=True),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.Column("updated", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_work_pools"),
        sa.UniqueConstraint("name", name="uq_work_pools_name"),
    )
    op.create_table(
        "work_queues",
        sa.Column("id", UuidType, nullable=False),
        sa.Column("work_pool_id", UuidType, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("concurrency_limit", sa.Integer, nullable=True),
        sa.Column("is_paused", sa.Boolean, nullable=False),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.Column("updated", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["work_pool_id"],
            ["work_pools.id"],
            name="fk_work_queues_work_pool_id_work_pools",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_work_queues"),
        sa.UniqueConstraint("work_pool_id", "name", name="uq_work_queues_work_pool_id_name"),
    )
    op.create_table(
        "workers",
        sa.Column("id", UuidType, nullable=False),
        sa.Column("work_pool_id", UuidType, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("last_heartbeat", UTCDateTime, nullable=False),
        sa.Column("online", sa.Boolean, nullable=False),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["work_pool_id"],
            ["work_pools.id"],
            name="fk_workers_work_pool_id_work_pools",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_workers"),
    )
    op.create_index("ix_workers_work_pool_id", "workers", ["work_pool_id"])
    # Plain nullable ADD COLUMNs (no table rebuild on SQLite).
    op.add_column("deployments", sa.Column("work_queue_id", UuidType, nullable=True))
    op.add_column("deployments", sa.Column("pull_steps", JSONType, nullable=True))
    op.add_column("flow_runs", sa.Column("work_queue_id", UuidType, nullable=True))
    op.add_column("flow_runs", sa.Column("job_variables", JSONType, nullable=True))
    op.create_index(
        "ix_flow_runs_work_queue_id_state_type", "flow_runs", ["work_queue_id", "state_type"]
    )


def downgrade() -> None:
    op.drop_index("ix_flow_runs_work_queue_id_state_type", table_name="flow_runs")
    # Plain DROP COLUMNs (SQLite >= 3.35 does them in place): a batch rebuild of flow_runs would drop
    # the table, and its children's rows with it (ON DELETE CASCADE), losing states and logs.
    for table, column in (
        ("flow_runs", "job_variables"),
        ("flow_runs", "work_queue_id"),
        ("deployments", "pull_steps"),
        ("deployments", "work_queue_id"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    op.drop_index("ix_workers_work_pool_id", table_name="workers")
    op.drop_table("workers")
    op.drop_table("work_queues")
    op.drop_table("work_pools")

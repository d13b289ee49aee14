"""Deployments, their schedules and the runners serving them; flow runs point at their deployment
(ON DELETE SET NULL), remember the runner that claimed them and the event that triggered them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tideflow.server.storage.types import JSONType, UTCDateTime, UuidType

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Children of flow_runs whose rows must survive SQLite's table rebuild (see _rebuild_flow_runs).
_CHILDREN = ("flow_run_states", "logs")


def _create_tables() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", UuidType, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("flow_id", UuidType, nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("version", sa.String(200), nullable=True),
        sa.Column("tags", JSONType, nullable=False),
        sa.Column("parameters", JSONType, nullable=False),
        sa.Column("parameter_openapi_schema", JSONType, nullable=False),
        sa.Column("enforce_parameter_schema", sa.Boolean(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("concurrency_limit", sa.Integer(), nullable=True),
        sa.Column("triggers", JSONType, nullable=False),
        sa.Column("job_variables", JSONType, nullable=False),
        sa.Column("entrypoint", sa.Text(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("last_polled", UTCDateTime, nullable=True),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.Column("updated", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["flow_id"], ["flows.id"], name="fk_deployments_flow_id_flows", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_deployments"),
        sa.UniqueConstraint("flow_id", "name", name="uq_deployments_flow_id_name"),
    )
    op.create_index("ix_deployments_name", "deployments", ["name"])
    op.create_table(
        "deployment_schedules",
        sa.Column("id", UuidType, nullable=False),
        sa.Column("deployment_id", UuidType, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("schedule", JSONType, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.Column("updated", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name="fk_deployment_schedules_deployment_id_deployments",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_deployment_schedules"),
    )
    op.create_index(
        "ix_deployment_schedules_deployment_id", "deployment_schedules", ["deployment_id"]
    )
    op.create_table(
        "runners",
        sa.Column("id", UuidType, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("deployment_ids", JSONType, nullable=False),
        sa.Column("limit", sa.Integer(), nullable=True),
        sa.Column("last_heartbeat", UTCDateTime, nullable=False),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_runners"),
    )
    op.create_index("ix_runners_last_heartbeat", "runners", ["last_heartbeat"])


def _rebuild_flow_runs(upgrade: bool) -> None:
    # SQLite can only add a foreign key by rebuilding the table, and dropping the old flow_runs
    # cascades to its children: keep their rows aside and put them back afterwards.
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        for child in _CHILDREN:
            op.execute(f"CREATE TEMP TABLE _keep_{child} AS SELECT * FROM {child}")
    with op.batch_alter_table("flow_runs") as batch:
        if upgrade:
            batch.add_column(sa.Column("runner_id", UuidType, nullable=True))
            batch.add_column(sa.Column("triggering_event_id", UuidType, nullable=True))
            batch.create_foreign_key(
                "fk_flow_runs_deployment_id_deployments",
                "deployments",
                ["deployment_id"],
                ["id"],
                ondelete="SET NULL",
            )
            batch.create_index(
                "ix_flow_runs_deployment_id_state_type", ["deployment_id", "state_type"]
            )
            batch.create_index(
                "ix_flow_runs_state_type_next_scheduled_start_time",
                ["state_type", "next_scheduled_start_time"],
            )
            batch.create_index("ix_flow_runs_runner_id", ["runner_id"])
        else:
            batch.drop_index("ix_flow_runs_runner_id")
            batch.drop_index("ix_flow_runs_state_type_next_scheduled_start_time")
            batch.drop_index("ix_flow_runs_deployment_id_state_type")
            batch.drop_constraint("fk_flow_runs_deployment_id_deployments", type_="foreignkey")
            batch.drop_column("triggering_event_id")
            batch.drop_column("runner_id")
    if sqlite:
        for child in _CHILDREN:
            op.execute(f"DELETE FROM {child}")
            op.execute(f"INSERT INTO {child} SELECT * FROM _keep_{child}")
            op.execute(f"DROP TABLE _keep_{child}")


def upgrade() -> None:
    _create_tables()
    _rebuild_flow_runs(upgrade=True)


def downgrade() -> None:
    _rebuild_flow_runs(upgrade=False)
    op.drop_table("runners")
    op.drop_table("deployment_schedules")
    op.drop_table("deployments")

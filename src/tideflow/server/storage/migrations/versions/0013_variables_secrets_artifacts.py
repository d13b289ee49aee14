"""Variables, secrets, artifacts, global concurrency and rate limits (issue 12).

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tideflow.server.storage.types import JSONType, UTCDateTime, UuidType

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "variables",
        sa.Column("id", UuidType, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("value", JSONType, nullable=True),
        sa.Column("tags", JSONType, nullable=False),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.Column("updated", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_variables"),
        sa.UniqueConstraint("name", name="uq_variables_name"),
    )
    op.create_table(
        "secrets",
        sa.Column("id", UuidType, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.Column("updated", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_secrets"),
        sa.UniqueConstraint("name", name="uq_secrets_name"),
    )
    op.create_table(
        "artifacts",
        sa.Column("id", UuidType, nullable=False),
        sa.Column("key", sa.String(255), nullable=True),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("data", JSONType, nullable=True),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("flow_run_id", UuidType, nullable=True),
        sa.Column("task_run_id", UuidType, nullable=True),
        sa.Column("is_latest", sa.Boolean, nullable=False),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.Column("updated", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_artifacts"),
    )
    op.create_index("ix_artifacts_key_created", "artifacts", ["key", "created"])
    op.create_index("ix_artifacts_flow_run_id", "artifacts", ["flow_run_id"])
    op.create_index("ix_artifacts_task_run_id", "artifacts", ["task_run_id"])
    op.create_index("ix_artifacts_created", "artifacts", ["created"])
    op.create_table(
        "global_concurrency_limits",
        sa.Column("id", UuidType, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("limit", sa.Integer, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("slot_decay_per_second", sa.Float, nullable=False),
        sa.Column("rate_slots", sa.Float, nullable=False),
        sa.Column("rate_updated", UTCDateTime, nullable=False),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.Column("updated", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_global_concurrency_limits"),
        sa.UniqueConstraint("name", name="uq_global_concurrency_limits_name"),
    )
    op.create_table(
        "global_concurrency_leases",
        sa.Column("id", UuidType, nullable=False),
        sa.Column("limit_id", UuidType, nullable=False),
        sa.Column("slots", sa.Integer, nullable=False),
        sa.Column("expires", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["limit_id"],
            ["global_concurrency_limits.id"],
            name="fk_global_concurrency_leases_limit_id_global_concurrency_limits",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", "limit_id", name="pk_global_concurrency_leases"),
    )
    op.create_index(
        "ix_global_concurrency_leases_limit_id_expires",
        "global_concurrency_leases",
        ["limit_id", "expires"],
    )


def downgrade() -> None:
    op.drop_table("global_concurrency_leases")
    op.drop_table("global_concurrency_limits")
    op.drop_table("artifacts")
    op.drop_table("secrets")
    op.drop_table("variables")

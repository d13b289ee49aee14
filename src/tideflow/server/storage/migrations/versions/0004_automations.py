"""Automations: their definitions (owned ones unique per owner), trigger bucket state, firings,
action executions with a unique (automation, firing, action) key, and the engine's replay checkpoint.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tideflow.server.storage.types import JSONType, UTCDateTime, UuidType

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "automations",
        sa.Column("id", UuidType, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("trigger", JSONType, nullable=False),
        sa.Column("actions", JSONType, nullable=False),
        sa.Column("actions_on_trigger", JSONType, nullable=False),
        sa.Column("actions_on_resolve", JSONType, nullable=False),
        sa.Column("owner_resource", sa.String(300), nullable=True),
        sa.Column("owner_key", sa.String(300), nullable=True),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.Column("updated", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_automations"),
        sa.UniqueConstraint(
            "owner_resource", "owner_key", name="uq_automations_owner_resource_owner_key"
        ),
    )
    op.create_index("ix_automations_name", "automations", ["name"])
    op.create_table(
        "automation_buckets",
        sa.Column("automation_id", UuidType, nullable=False),
        sa.Column("trigger_id", UuidType, nullable=False),
        sa.Column("bucket_key", sa.String(2000), nullable=False),
        sa.Column("state", JSONType, nullable=False),
        sa.Column("updated", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint(
            "automation_id", "trigger_id", "bucket_key", name="pk_automation_buckets"
        ),
        sa.ForeignKeyConstraint(
            ["automation_id"],
            ["automations.id"],
            ondelete="CASCADE",
            name="fk_automation_buckets_automation_id_automations",
        ),
    )
    op.create_table(
        "automation_firings",
        sa.Column("automation_id", UuidType, nullable=False),
        sa.Column("id", UuidType, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("trigger_id", UuidType, nullable=False),
        sa.Column("bucket_key", sa.String(2000), nullable=False),
        sa.Column("occurred", UTCDateTime, nullable=False),
        sa.Column("fired_at", UTCDateTime, nullable=False),
        sa.Column("triggering_event_id", UuidType, nullable=True),
        sa.Column("event_ids", JSONType, nullable=False),
        sa.Column("labels", JSONType, nullable=False),
        sa.Column("firing", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("automation_id", "id", name="pk_automation_firings"),
        sa.ForeignKeyConstraint(
            ["automation_id"],
            ["automations.id"],
            ondelete="CASCADE",
            name="fk_automation_firings_automation_id_automations",
        ),
    )
    op.create_index(
        "ix_automation_firings_automation_id_fired_at",
        "automation_firings",
        ["automation_id", "fired_at"],
    )
    op.create_table(
        "automation_actions",
        sa.Column("automation_id", UuidType, nullable=False),
        sa.Column("firing_id", UuidType, nullable=False),
        sa.Column("action_index", sa.Integer, nullable=False),
        sa.Column("action_type", sa.String(40), nullable=False),
        sa.Column("action", JSONType, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("flow_run_id", UuidType, nullable=True),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.Column("updated", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint(
            "automation_id", "firing_id", "action_index", name="pk_automation_actions"
        ),
        sa.ForeignKeyConstraint(
            ["automation_id"],
            ["automations.id"],
            ondelete="CASCADE",
            name="fk_automation_actions_automation_id_automations",
        ),
    )
    op.create_index("ix_automation_actions_status", "automation_actions", ["status"])
    op.create_table(
        "automation_checkpoints",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("received", UTCDateTime, nullable=False),
        sa.Column("event_id", UuidType, nullable=False),
        sa.Column("updated", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_automation_checkpoints"),
    )


def downgrade() -> None:
    op.drop_table("automation_checkpoints")
    op.drop_index("ix_automation_actions_status", table_name="automation_actions")
    op.drop_table("automation_actions")
    op.drop_index("ix_automation_firings_automation_id_fired_at", table_name="automation_firings")
    op.drop_table("automation_firings")
    op.drop_table("automation_buckets")
    op.drop_index("ix_automations_name", table_name="automations")
    op.drop_table("automations")

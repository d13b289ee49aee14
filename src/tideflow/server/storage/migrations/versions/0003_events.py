"""Events and the resources they name: ``events`` holds each event once (its id is the primary key,
so a resent event is dropped), ``event_resources`` one row per resource of an event (position 0 is
the primary resource, role ""; related resources follow) so related-id and role lookups use an index.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tideflow.server.storage.types import JSONType, UTCDateTime, UuidType

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", UuidType, nullable=False),
        sa.Column("occurred", UTCDateTime, nullable=False),
        sa.Column("event", sa.String(1024), nullable=False),
        sa.Column("resource_id", sa.String(1024), nullable=False),
        sa.Column("resource", JSONType, nullable=False),
        sa.Column("related", JSONType, nullable=False),
        sa.Column("payload", JSONType, nullable=False),
        sa.Column("follows", UuidType, nullable=True),
        sa.Column("received", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_occurred_id", "events", ["occurred", "id"])
    op.create_index("ix_events_event_occurred", "events", ["event", "occurred"])
    op.create_index("ix_events_resource_id_occurred", "events", ["resource_id", "occurred"])
    op.create_index("ix_events_received", "events", ["received"])
    op.create_table(
        "event_resources",
        sa.Column("event_id", UuidType, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.String(1024), nullable=False),
        sa.Column("role", sa.String(1024), nullable=False),
        sa.Column("occurred", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name="fk_event_resources_event_id_events",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", "position", name="pk_event_resources"),
    )
    op.create_index(
        "ix_event_resources_resource_id_occurred", "event_resources", ["resource_id", "occurred"]
    )
    op.create_index(
        "ix_event_resources_role_resource_id", "event_resources", ["role", "resource_id"]
    )


def downgrade() -> None:
    op.drop_table("event_resources")
    op.drop_table("events")

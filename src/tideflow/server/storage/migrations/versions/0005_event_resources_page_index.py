"""Related-id pages from the index: ``event_resources`` (resource_id, occurred, event_id, position)
replaces (resource_id, occurred), so the newest (or oldest) page of one related resource is read in
order from the index and its total is counted from the index alone.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_event_resources_resource_id_occurred_event_id_position",
        "event_resources",
        ["resource_id", "occurred", "event_id", "position"],
    )
    op.drop_index("ix_event_resources_resource_id_occurred", table_name="event_resources")


def downgrade() -> None:
    op.create_index(
        "ix_event_resources_resource_id_occurred", "event_resources", ["resource_id", "occurred"]
    )
    op.drop_index(
        "ix_event_resources_resource_id_occurred_event_id_position", table_name="event_resources"
    )

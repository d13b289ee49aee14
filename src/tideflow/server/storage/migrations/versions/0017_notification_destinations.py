"""Notification destinations, and the collision strategy of deployment concurrency limits (issue 12).

Revision ID: 0017
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tideflow.server.storage.types import JSONType, UTCDateTime, UuidType

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification_destinations",
        sa.Column("id", UuidType, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("config", JSONType, nullable=False),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.Column("updated", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notification_destinations"),
        sa.UniqueConstraint("name", name="uq_notification_destinations_name"),
    )
    op.add_column("deployments", sa.Column("concurrency_options", JSONType, nullable=True))


def downgrade() -> None:
    # In place (ALTER TABLE ... DROP COLUMN), never a batch rebuild of deployments.
    op.drop_column("deployments", "concurrency_options")
    op.drop_table("notification_destinations")

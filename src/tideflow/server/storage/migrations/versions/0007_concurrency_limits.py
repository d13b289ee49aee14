"""Tag-based task concurrency limits and their slots (leases).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tideflow.server.storage.types import UTCDateTime, UuidType

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "concurrency_limits",
        sa.Column("id", UuidType, nullable=False),
        sa.Column("tag", sa.String(200), nullable=False),
        sa.Column("concurrency_limit", sa.Integer, nullable=False),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.Column("updated", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_concurrency_limits"),
        sa.UniqueConstraint("tag", name="uq_concurrency_limits_tag"),
    )
    op.create_table(
        "concurrency_slots",
        sa.Column("limit_id", UuidType, nullable=False),
        sa.Column("holder", UuidType, nullable=False),
        sa.Column("expires", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["limit_id"],
            ["concurrency_limits.id"],
            name="fk_concurrency_slots_limit_id_concurrency_limits",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("limit_id", "holder", name="pk_concurrency_slots"),
    )
    op.create_index("ix_concurrency_slots_holder", "concurrency_slots", ["holder"])


def downgrade() -> None:
    op.drop_table("concurrency_slots")
    op.drop_table("concurrency_limits")

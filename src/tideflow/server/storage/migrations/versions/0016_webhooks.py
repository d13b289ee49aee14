"""Inbound webhooks (issue 16): the ``webhooks`` table; and an index on ``flow_runs.end_time`` for
metric triggers (runs that ended in a range). An index is made and dropped in place: no table
rebuild.

Revision ID: 0016
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tideflow.server.storage.types import JSONType, UTCDateTime, UuidType

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", UuidType, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("template", JSONType, nullable=False),
        sa.Column("verification", sa.String(20), nullable=False),
        sa.Column("signature_header", sa.String(200), nullable=True),
        sa.Column("secret_token", sa.Text, nullable=True),
        sa.Column("max_body_bytes", sa.Integer, nullable=False),
        sa.Column("rate_limit", sa.Integer, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.Column("updated", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhooks"),
        sa.UniqueConstraint("name", name="uq_webhooks_name"),
        sa.UniqueConstraint("slug", name="uq_webhooks_slug"),
    )
    op.create_index("ix_flow_runs_end_time", "flow_runs", ["end_time"])


def downgrade() -> None:
    op.drop_index("ix_flow_runs_end_time", table_name="flow_runs")
    op.drop_table("webhooks")

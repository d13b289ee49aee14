"""Assets: the catalogue of materialized assets and their dependency edges (issue 21).

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tideflow.server.storage.types import JSONType, UTCDateTime, UuidType

revision = "0014"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assets",
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("properties", JSONType, nullable=True),
        sa.Column("last_materialized", UTCDateTime, nullable=True),
        sa.Column("last_status", sa.String(20), nullable=True),
        sa.Column("last_event_id", UuidType, nullable=True),
        sa.Column("last_flow_run_id", UuidType, nullable=True),
        sa.Column("last_task_run_id", UuidType, nullable=True),
        sa.Column("last_metadata", JSONType, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("materializations", sa.Integer, nullable=False),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.Column("updated", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_assets"),
    )
    op.create_index("ix_assets_last_flow_run_id", "assets", ["last_flow_run_id"])
    op.create_index("ix_assets_last_materialized", "assets", ["last_materialized"])
    op.create_table(
        "asset_dependencies",
        sa.Column("upstream", sa.String(512), nullable=False),
        sa.Column("downstream", sa.String(512), nullable=False),
        sa.Column("updated", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("upstream", "downstream", name="pk_asset_dependencies"),
    )
    op.create_index("ix_asset_dependencies_downstream", "asset_dependencies", ["downstream"])


def downgrade() -> None:
    # Only this revision's own tables: nothing else is rebuilt.
    op.drop_table("asset_dependencies")
    op.drop_table("assets")

"""UI users and browser sessions stored in the database (ADR 0007).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tideflow.server.storage.types import JSONType, UTCDateTime, UuidType

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", UuidType, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(400), nullable=False),
        sa.Column("scopes", JSONType, nullable=False),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.Column("password_changed", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("name", name="uq_users_name"),
    )
    op.create_table(
        "browser_sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("principal_kind", sa.String(20), nullable=False),
        sa.Column("principal_id", sa.String(80), nullable=False),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.Column("expires", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_browser_sessions"),
    )
    op.create_index(
        "ix_browser_sessions_principal_kind_principal_id",
        "browser_sessions",
        ["principal_kind", "principal_id"],
    )
    op.create_index("ix_browser_sessions_expires", "browser_sessions", ["expires"])


def downgrade() -> None:
    op.drop_index("ix_browser_sessions_expires", table_name="browser_sessions")
    op.drop_index("ix_browser_sessions_principal_kind_principal_id", table_name="browser_sessions")
    op.drop_table("browser_sessions")
    op.drop_table("users")

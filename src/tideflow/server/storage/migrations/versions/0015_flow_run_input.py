"""Flow run inputs (issue 21): values sent to a run (``send_input``, a resume's ``run_input``, the
JSON schema a pause waits for), keyed by run and key.

Revision ID: 0015
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tideflow.server.storage.types import JSONType, UTCDateTime, UuidType

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flow_run_input",
        sa.Column("id", UuidType, nullable=False),
        sa.Column("flow_run_id", UuidType, nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("value", JSONType, nullable=True),
        sa.Column("sender", sa.String(200), nullable=True),
        sa.Column("acked", UTCDateTime, nullable=True),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["flow_run_id"],
            ["flow_runs.id"],
            name="fk_flow_run_input_flow_run_id_flow_runs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_flow_run_input"),
        sa.UniqueConstraint("flow_run_id", "key", name="uq_flow_run_input_flow_run_id_key"),
    )
    op.create_index(
        "ix_flow_run_input_flow_run_id_created", "flow_run_input", ["flow_run_id", "created"]
    )


def downgrade() -> None:
    op.drop_index("ix_flow_run_input_flow_run_id_created", table_name="flow_run_input")
    op.drop_table("flow_run_input")

"""An index on ``flow_runs.triggering_event_id`` (issue 15): an event's page lists the runs it
triggered, and a run's page the event that triggered it, without scanning every run.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_flow_runs_triggering_event_id", "flow_runs", ["triggering_event_id"])


def downgrade() -> None:
    op.drop_index("ix_flow_runs_triggering_event_id", table_name="flow_runs")

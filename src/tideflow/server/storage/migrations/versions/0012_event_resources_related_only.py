"""``event_resources`` holds related resources only: the primary resource's row (position 0, role
"") repeated ``events.resource_id``, which has its own index, so every event wrote one index row
more than filters need. Filters on any resource now look at ``events.resource_id`` as well.

Revision ID: 0012
Revises: 0013
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM event_resources WHERE position = 0")


def downgrade() -> None:
    op.execute(
        "INSERT INTO event_resources (event_id, position, resource_id, role, occurred) "
        "SELECT id, 0, resource_id, '', occurred FROM events"
    )

"""Paging: indexes that read the newest runs a page at a time (``runs list``), without sorting them all.

The parent's index grows the order's columns, so that a page of top-level runs (parent NULL)
or of a run's children is read in order too.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ORDER = ["created_time", "number", "id"]


def upgrade() -> None:
    op.create_index("ix_runs_created_time", "runs", _ORDER)
    op.create_index("ix_runs_parent_created_time", "runs", ["parent_id", *_ORDER])
    op.drop_index("ix_runs_parent_id", table_name="runs")


def downgrade() -> None:
    op.create_index("ix_runs_parent_id", "runs", ["parent_id"])
    op.drop_index("ix_runs_parent_created_time", table_name="runs")
    op.drop_index("ix_runs_created_time", table_name="runs")

"""Server: an index on when each metric batch was applied, so that old batch ids are pruned cheaply.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_applied_batches_applied_time", "applied_batches", ["applied_time"])


def downgrade() -> None:
    op.drop_index("ix_applied_batches_applied_time", table_name="applied_batches")

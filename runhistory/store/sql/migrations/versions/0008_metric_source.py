"""Metric sources: a series read from the run's own TensorBoard event files says so.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every series stored so far was logged through the SDK, whose source is "".
    with op.batch_alter_table("metrics") as batch:
        batch.add_column(sa.Column("source", sa.String(32), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("metrics") as batch:
        batch.drop_column("source")

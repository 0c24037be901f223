"""Jobs: the compute target and supervisor heartbeat of a run, and registered compute targets.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("target", sa.String(255), nullable=True))
        batch.add_column(sa.Column("heartbeat_time", sa.Float, nullable=True))
    op.create_index("ix_runs_target_status", "runs", ["target", "status"])
    op.create_table(
        "compute_targets",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("created_time", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("compute_targets")
    op.drop_index("ix_runs_target_status", "runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("heartbeat_time")
        batch.drop_column("target")

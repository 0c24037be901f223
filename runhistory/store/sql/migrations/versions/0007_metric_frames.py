"""Long runs: recent flushes are kept as one row per flush per run ("frames") until compacted.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_frames",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(512), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("created_time", sa.Float, nullable=False),
        sa.Column("points", sa.Integer, nullable=False),
        sa.Column("metric_ids", sa.LargeBinary, nullable=False),
        sa.Column("first_indexes", sa.LargeBinary, nullable=False),
        sa.Column("counts", sa.LargeBinary, nullable=False),
        sa.Column("encodings", sa.LargeBinary, nullable=False),
        sa.Column("cells", sa.LargeBinary, nullable=False),
        sa.Column("json_values", sa.LargeBinary, nullable=True),
        sa.Column("steps", sa.LargeBinary, nullable=True),
        sa.Column("times", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_metric_frames_run", "metric_frames", ["run_id", "id"])


def downgrade() -> None:
    # Frames hold points no chunk has yet: dropping them would lose those points.
    left = op.get_bind().execute(sa.text("SELECT count(*) FROM metric_frames")).scalar()
    if left:
        raise RuntimeError(
            f"{left} flush frame(s) are not compacted yet; run `runhistory workspace compact` with this "
            f"version first, then downgrade."
        )
    op.drop_index("ix_metric_frames_run", table_name="metric_frames")
    op.drop_table("metric_frames")

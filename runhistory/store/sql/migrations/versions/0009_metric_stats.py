"""Run queries: each series keeps its last number, minimum and maximum, indexed by name.

Existing series are summarised from their points, read with the store's own readers a few
hundred runs at a time (see runhistory/store/series_stats.py for NaN and non-numeric series).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_RUNS_PER_BATCH = 200


def upgrade() -> None:
    with op.batch_alter_table("metrics") as batch:
        batch.add_column(sa.Column("last_number", sa.Float, nullable=True))
        batch.add_column(sa.Column("min_value", sa.Float, nullable=True))
        batch.add_column(sa.Column("max_value", sa.Float, nullable=True))
    op.create_index("ix_metrics_name_last_number", "metrics", ["name", "last_number"])
    _backfill(op.get_bind())


def _backfill(connection) -> None:
    from runhistory.store.series_stats import NUMERIC_KINDS, numeric_stats
    from runhistory.store.sql.schema import metrics
    from runhistory.store.sql.series_reads import read_series, series_rows

    run_ids = connection.execute(
        sa.select(metrics.c.run_id).where(metrics.c.kind.in_(NUMERIC_KINDS)).distinct().order_by(metrics.c.run_id)
    ).scalars().all()
    for at in range(0, len(run_ids), _RUNS_PER_BATCH):
        rows = [row for row in series_rows(connection, run_ids[at : at + _RUNS_PER_BATCH], None) if row.kind in NUMERIC_KINDS]
        updates = []
        for metric_id, series in read_series(connection, rows, {}).items():
            last, low, high = numeric_stats(series.kind, series.values)
            if (last, low, high) != (None, None, None):
                updates.append({"id_": metric_id, "last": last, "low": low, "high": high})
        if updates:
            connection.execute(
                sa.update(metrics)
                .where(metrics.c.id == sa.bindparam("id_"))
                .values(last_number=sa.bindparam("last"), min_value=sa.bindparam("low"), max_value=sa.bindparam("high")),
                updates,
            )


def downgrade() -> None:
    op.drop_index("ix_metrics_name_last_number", table_name="metrics")
    with op.batch_alter_table("metrics") as batch:
        batch.drop_column("max_value")
        batch.drop_column("min_value")
        batch.drop_column("last_number")

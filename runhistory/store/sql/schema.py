"""The tables of the SQL store, as SQLAlchemy Core tables (queries use these).

The schema itself is created and changed only by the Alembic migrations next to this
module; this file mirrors the newest migration.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# The newest migration's revision. Checked against Alembic by the tests; kept here so that
# opening an up-to-date workspace never imports Alembic (it costs ~0.15 s per process).
SCHEMA_REVISION = "0009"

metadata = MetaData()

experiments = Table(
    "experiments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_time", Float, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(512), primary_key=True),
    Column("experiment_id", Integer, ForeignKey("experiments.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("display_name", String(255), nullable=False),
    Column("status", String(32), nullable=False),
    Column("parent_id", String(512), ForeignKey("runs.id"), nullable=True),
    Column("run_type", String(32), nullable=False),
    Column("created_time", Float, nullable=False),
    Column("start_time", Float, nullable=True),
    Column("end_time", Float, nullable=True),
    Column("error", Text, nullable=True),
    Column("target", String(255), nullable=True),  # the compute target of a job run
    Column("heartbeat_time", Float, nullable=True),  # last sign of life of a job's supervisor or a run's owner
    # The process that started an interactive or child run (see runhistory/liveness.py); NULL for jobs.
    Column("owner_host", String(255), nullable=True),
    Column("owner_machine", String(64), nullable=True),
    Column("owner_pid", Integer, nullable=True),
    Column("owner_start_time", Float, nullable=True),
    UniqueConstraint("experiment_id", "number", name="uq_runs_experiment_number"),
    Index("ix_runs_target_status", "target", "status"),
    # A page of the newest runs (runs list), of all runs or of the top-level runs / a run's children.
    Index("ix_runs_created_time", "created_time", "number", "id"),
    Index("ix_runs_parent_created_time", "parent_id", "created_time", "number", "id"),
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", String(512), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=True),
)

properties = Table(
    "properties",
    metadata,
    Column("run_id", String(512), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
)

metrics = Table(
    "metrics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(512), ForeignKey("runs.id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("description", Text, nullable=False),
    Column("count", Integer, nullable=False),
    Column("last_value", Text, nullable=True),
    # Where the series came from (see MetricSource): "" the SDK, "tensorboard" the run's own event files.
    Column("source", String(32), nullable=False, server_default=""),
    # The numeric summary of a scalar or list series of numbers (see runhistory/store/series_stats.py),
    # NULL for other series; run queries filter and sort by these.
    Column("last_number", Float, nullable=True),
    Column("min_value", Float, nullable=True),
    Column("max_value", Float, nullable=True),
    UniqueConstraint("run_id", "name", name="uq_metrics_run_name"),
    Index("ix_metrics_name_last_number", "name", "last_number"),
)

compute_targets = Table(
    "compute_targets",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("config", Text, nullable=False),  # JSON
    Column("created_time", Float, nullable=False),
)

# Points are stored packed: one row holds a run of consecutive points of one series.
metric_chunks = Table(
    "metric_chunks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("metric_id", Integer, ForeignKey("metrics.id"), nullable=False),
    Column("first_index", Integer, nullable=False),
    Column("count", Integer, nullable=False),
    Column("encoding", String(8), nullable=False),
    Column("steps", LargeBinary, nullable=True),  # NULL: each step is the point's index
    Column("vals", LargeBinary, nullable=False),
    Column("times", LargeBinary, nullable=False),
    Index("ix_metric_chunks_metric_first", "metric_id", "first_index"),
)

# The recent flushes of a run, one row each, not yet compacted into per-series chunks (see
# frames.py): a flush of many series is one row here instead of one row per series.
metric_frames = Table(
    "metric_frames",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(512), ForeignKey("runs.id"), nullable=False),
    Column("created_time", Float, nullable=False),
    Column("points", Integer, nullable=False),  # how many points it holds (a fold takes a bounded number)
    Column("metric_ids", LargeBinary, nullable=False),  # int64 per piece (one piece: one series' points)
    Column("first_indexes", LargeBinary, nullable=False),  # int64 per piece
    Column("counts", LargeBinary, nullable=False),  # int64 per piece
    Column("encodings", LargeBinary, nullable=False),  # uint8 per piece: 0 float64, 1 int64, 2 JSON
    Column("cells", LargeBinary, nullable=False),  # 8 bytes per point of a numeric piece
    Column("json_values", LargeBinary, nullable=True),  # a JSON list of the JSON pieces' value lists
    Column("steps", LargeBinary, nullable=True),  # int64 per point; NULL: each step is the point's index
    Column("times", LargeBinary, nullable=False),  # float64 per point
    Index("ix_metric_frames_run", "run_id", "id"),
)

# Ids of metric batches already applied: a batch sent again (a client retrying after a lost
# reply, a spool replayed) is recognised and skipped, so no point is ever stored twice. Ids
# older than BATCH_ID_RETENTION_S (store.py) are pruned.
applied_batches = Table(
    "applied_batches",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("applied_time", Float, nullable=False),
    Index("ix_applied_batches_applied_time", "applied_time"),
)

# API tokens of the runhistory server, stored as sha256 hex digests (never the token itself).
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_time", Float, nullable=False),
    Column("revoked_time", Float, nullable=True),
)

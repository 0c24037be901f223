"""The request bodies and answers of the runhistory server's API, as pydantic models (the OpenAPI schema).

Request models bound what a schema can (lengths, counts, ranges, finite floats); the store's own
validation (:mod:`runhistory.core.validation`) decides the rest, and its refusals are answered 4xx.
Records are answered as the store's own frozen dataclasses (:mod:`runhistory.store.base`), which
the schema documents as they are.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

from pydantic import BaseModel, Field, StringConstraints

from runhistory.protocol.routes import MAX_RUNS_PER_METRICS_READ
from runhistory.store.base import MAX_STATS_RUNS, RunStatus
from runhistory.store.query import MAX_ORDER_KEYS, MAX_QUERY_CHARS

MAX_ID = 2**62  # ids, numbers, counts, offsets: what every database stores as a 64-bit integer
LATEST_TIME = 253402300799.0  # 9999-12-31, the last wall time every reader can show
MAX_ENTRIES = 10_000  # tags, properties, config keys in one request
MAX_RUNS_PAGE = 10_000  # the most runs one listing answers

Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]
RunId = Annotated[str, StringConstraints(min_length=1, max_length=512)]
Text = Annotated[str, StringConstraints(max_length=1 << 20)]
StatusName = Annotated[str, StringConstraints(min_length=1, max_length=32)]
Count = Annotated[int, Field(ge=0, le=MAX_ID)]
Tags = Annotated[dict[Name, Optional[Text]], Field(max_length=MAX_ENTRIES)]
Properties = Annotated[dict[Name, Text], Field(max_length=MAX_ENTRIES)]


# --- request bodies ---


class ExperimentIn(BaseModel):
    """The experiment to find or create."""

    name: Name


class OwnerIn(BaseModel):
    """The process that started a run (see runhistory.liveness)."""

    host: Name
    machine: Optional[str] = Field(default=None, max_length=64)
    pid: int = Field(ge=0, le=2**31 - 1)
    start_time: float = Field(ge=0, le=LATEST_TIME, allow_inf_nan=False)


class RunIn(BaseModel):
    """A run to create."""

    experiment_id: Count
    display_name: Optional[str] = Field(default=None, max_length=255)
    parent_id: Optional[RunId] = None
    status: StatusName = RunStatus.RUNNING
    run_type: str = Field(default="interactive", min_length=1, max_length=32)
    target: Optional[Name] = None
    owner: Optional[OwnerIn] = None


class RunFilterIn(BaseModel):
    """Which runs to list (the page itself travels as the ``limit`` and ``offset`` query parameters)."""

    experiment_id: Optional[Count] = None
    parent_id: Optional[RunId] = None
    top_level_only: bool = False
    status: Optional[StatusName] = None
    tags: dict[Name, Optional[Text]] = Field(default={}, max_length=100)
    target: Optional[Name] = None
    query: Optional[Annotated[str, StringConstraints(max_length=MAX_QUERY_CHARS)]] = None
    experiment_ids: tuple[Count, ...] = Field(default=(), max_length=1000)
    order_by: tuple[Annotated[str, StringConstraints(max_length=1000)], ...] = Field(default=(), max_length=MAX_ORDER_KEYS)


class MetricStatsIn(BaseModel):
    """The runs (at most MAX_STATS_RUNS: a page of a runs table) whose series' stats to read."""

    run_ids: list[RunId] = Field(max_length=MAX_STATS_RUNS)


class MetricsOfRunsIn(BaseModel):
    """The runs (at most MAX_RUNS_PER_METRICS_READ; ask for more in pages) whose series to read, and
    which series (None: all)."""

    run_ids: list[RunId] = Field(max_length=MAX_RUNS_PER_METRICS_READ)
    names: Optional[list[Name]] = Field(default=None, max_length=MAX_ENTRIES)


class StatusIn(BaseModel):
    """A run's new status (with the error of a failed run)."""

    status: StatusName
    error: Optional[dict[Name, Any]] = Field(default=None, max_length=100)
    only_if_not_terminal: bool = True
    at: Optional[float] = Field(default=None, ge=0, le=LATEST_TIME, allow_inf_nan=False)


class ClaimIn(BaseModel):
    """A job slot on a compute target."""

    target: Name
    max_concurrent: Count


class AdmitIn(BaseModel):
    """How many jobs a compute target may have in flight, and at most how many to admit now (None: no cap)."""

    max_in_flight: Annotated[int, Field(ge=0, le=MAX_ID, strict=True)]
    limit: Optional[Annotated[int, Field(ge=0, le=MAX_ID, strict=True)]] = None


class ComputeTargetIn(BaseModel):
    """A compute target's kind and configuration."""

    kind: str = Field(min_length=1, max_length=32)
    config: dict[Name, Any] = Field(default={}, max_length=MAX_ENTRIES)


# --- answers that are not store records ---


class HealthOut(BaseModel):
    """The server answers (and its version); says nothing about the store, since it needs no token."""

    status: str
    version: str


class HeartbeatOut(BaseModel):
    """The run's status after its heartbeat (a supervisor stops a run that was asked to)."""

    status: str


class AdmitOut(BaseModel):
    """The runs admitted from the target's queue (now Starting), oldest first: the caller starts them."""

    admitted: list[str]


class HoldOut(BaseModel):
    """The run's status after it was let wait in its target's queue (only a Queued job run is held)."""

    status: str


class ClaimOut(BaseModel):
    """Whether the run got a job slot."""

    claimed: bool


class PointsOut(BaseModel):
    """How many metric points a batch held."""

    points: int


class CountOut(BaseModel):
    """How many records match."""

    count: int


class SizeOut(BaseModel):
    """A file's size in bytes (None: no such file)."""

    size: Optional[int]


class SealOut(BaseModel):
    """The run whose files are being sealed."""

    sealing: str


class EmptyOut(BaseModel):
    """Done; nothing to answer."""


class ErrorOut(BaseModel):
    """Every error answer: the stable code of its class (``runhistory.core.errors``) and one sentence."""

    error: str = Field(description="The stable code of the error's class, such as not_found")
    detail: str = Field(description="What went wrong, in one sentence")


# documented for every route (in place of FastAPI's own validation-error schema)
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {"4XX": {"model": ErrorOut, "description": "Refused, with one sentence"}}

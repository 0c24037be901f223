"""A metric series knows its source (the SDK, or the run's own TensorBoard event files), and a
TensorBoard summary kept in the event files reads back as its kind and count: on SQLite and
PostgreSQL, directly and behind a runhistory server."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from runhistory import Experiment, Run, Workspace
from runhistory.backends import open_run_store
from runhistory.core.errors import MetricValueError
from runhistory.protocol.wire import decode_batches, encode_batches
from runhistory.store.base import MetricBatch, MetricKind, MetricSource, RunStore
from tests.postgres import BACKENDS, STORES
from tests.server.support import ServerProcess

pytestmark = BACKENDS  # every test using `ws` on SQLite and on PostgreSQL

EVENT_FILES = MetricSource.EVENT_FILES


@pytest.fixture
def run(exp: Experiment) -> Run:
    return exp.start_logging()


def _batch(run_id: str, name: str, values: list, source: str = EVENT_FILES, kind: str = MetricKind.SCALAR) -> MetricBatch:
    """Points as the event-file reader appends them: steps and wall times of the events."""
    steps = [10 * index for index in range(len(values))]
    times = [1_700_000_000.0 + index for index in range(len(values))]
    return MetricBatch(run_id, name, kind, values, steps, times, description="", source=source)


def _log_from_event_files(store: RunStore, run_id: str) -> None:
    store.append_metrics(
        [
            _batch(run_id, "train/loss", [1.0, 0.5, 0.25]),
            _batch(run_id, "train/images", ["images", "images"], kind=MetricKind.SUMMARY),
        ]
    )


def test_series_read_back_with_their_source_from_every_read(ws: Workspace, run: Run) -> None:
    run.log("sdk_loss", 2.0)
    run.flush()
    _log_from_event_files(ws.store, run.id)
    reopened = open_run_store(ws.tracking_uri)  # nothing remembered: every read from the database
    try:
        for store in (ws.store, reopened):
            series = store.get_metrics(run.id)
            assert {name: one.source for name, one in series.items()} == {
                "sdk_loss": "",
                "train/images": EVENT_FILES,
                "train/loss": EVENT_FILES,
            }
            assert series["train/loss"].steps.tolist() == [0, 10, 20]
            assert store.get_metrics(run.id, ["train/loss"], start=2)["train/loss"].source == EVENT_FILES
            summaries = {summary.name: summary for summary in store.get_metric_summaries(run.id)}
            assert (summaries["train/loss"].source, summaries["train/loss"].last_value) == (EVENT_FILES, 0.25)
            assert (summaries["sdk_loss"].source, summaries["sdk_loss"].kind) == ("", MetricKind.SCALAR)
            of_runs = store.get_metrics_of_runs([run.id])[run.id]
            assert of_runs["train/loss"].source == EVENT_FILES and of_runs["sdk_loss"].source == ""
    finally:
        reopened.close()


def test_a_series_keeps_its_source_and_a_batch_from_another_is_refused_whole(ws: Workspace, run: Run) -> None:
    run.log("sdk_loss", 2.0)
    run.flush()
    _log_from_event_files(ws.store, run.id)
    reopened = open_run_store(ws.tracking_uri)
    try:
        for store in (ws.store, reopened):  # the series remembered, and read under lock
            with pytest.raises(MetricValueError, match=r"came from the run's TensorBoard event files; it cannot also take points from the SDK"):
                store.append_metrics([_batch(run.id, "fresh", [1.0], ""), _batch(run.id, "train/loss", [0.1], "")])
            with pytest.raises(MetricValueError, match=r"'sdk_loss' .* came from the SDK \(run.log\); it cannot also take points from the run's TensorBoard"):
                store.append_metrics([_batch(run.id, "sdk_loss", [0.1])])
    finally:
        reopened.close()
    assert "fresh" not in ws.store.get_metrics(run.id)  # one refused batch refuses the whole call
    assert ws.store.get_metrics(run.id, ["train/loss"])["train/loss"].values == [1.0, 0.5, 0.25]
    ws.store.append_metrics([_batch(run.id, "train/loss", [0.125])])  # its own source goes on appending
    assert len(ws.store.get_metrics(run.id, ["train/loss"])["train/loss"].values) == 4


def test_an_unknown_source_is_refused_in_one_sentence(ws: Workspace, run: Run) -> None:
    with pytest.raises(MetricValueError) as refused:
        ws.store.append_metrics([_batch(run.id, "loss", [1.0], source="wandb")])
    message = str(refused.value)
    assert message == f"Metric 'loss' of run {run.id}: unknown source 'wandb'; use one of '', 'tensorboard'."
    assert ws.store.get_metrics(run.id) == {}


def test_a_summary_reads_back_as_its_kind_and_count_without_payloads(ws: Workspace, run: Run) -> None:
    run.log("loss", 0.5)
    _log_from_event_files(ws.store, run.id)
    ws.store.append_metrics([_batch(run.id, "weights", ["histograms"] * 5, kind=MetricKind.SUMMARY)])
    assert run.get_metrics() == {
        "loss": 0.5,
        "train/loss": [1.0, 0.5, 0.25],
        "train/images": {"kind": "images", "count": 2},
        "weights": {"kind": "histograms", "count": 5},
    }
    assert run.get_metrics("weights", recursive=True) == {run.id: {"weights": {"kind": "histograms", "count": 5}}}


def test_a_summary_point_must_name_its_plugin(ws: Workspace, run: Run) -> None:
    for bad in (3.5, "", {"a": 1}):
        with pytest.raises(MetricValueError, match=r"Summary metric 'hist' of run .*: a point must name its TensorBoard plugin"):
            ws.store.append_metrics([_batch(run.id, "hist", [bad], kind=MetricKind.SUMMARY)])
    with pytest.raises(MetricValueError, match="is a summary metric; it cannot also take scalar points"):
        ws.store.append_metrics([_batch(run.id, "hist", ["histograms"], kind=MetricKind.SUMMARY), _batch(run.id, "hist", [1.0])])


def test_a_batch_without_a_source_travels_as_before_and_decodes_as_the_sdks() -> None:
    sdk = MetricBatch("r_1", "loss", MetricKind.SCALAR, [1.0], [None], [1.0])
    header = _header(encode_batches([sdk, _batch("r_1", "train/loss", [1.0])]))
    assert "source" not in header[0] and header[1]["source"] == EVENT_FILES
    decoded = decode_batches(encode_batches([sdk, _batch("r_1", "train/loss", [1.0])]), 1 << 20)
    assert [batch.source for batch in decoded] == ["", EVENT_FILES]


def _header(body: bytes) -> list[dict]:
    message = zlib.decompress(body)
    length = int.from_bytes(message[4:8], "little")
    return json.loads(message[8 : 8 + length])


# --- behind a runhistory server ---


@pytest.fixture(params=STORES)
def served(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerProcess]:
    """A real ``runhistory server`` on SQLite or on PostgreSQL."""
    monkeypatch.setenv("RUNHISTORY_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("RUNHISTORY_CONFIG_DIR", str(tmp_path / "home"))
    store_uri = request.getfixturevalue("postgres_uri") if request.param == "postgresql" else None
    server = ServerProcess(tmp_path / "server", store_uri=store_uri).start()
    yield server
    server.stop()


def test_the_source_and_summaries_make_a_round_trip_through_the_server(served: ServerProcess) -> None:
    ws = Workspace(served.url)
    run = Experiment(ws, "served").start_logging()
    run.log("sdk_loss", 2.0)
    run.flush()
    _log_from_event_files(ws.store, run.id)
    series = ws.store.get_metrics(run.id)
    assert {name: one.source for name, one in series.items()} == {
        "sdk_loss": "",
        "train/images": EVENT_FILES,
        "train/loss": EVENT_FILES,
    }
    assert ws.store.get_metrics_of_runs([run.id])[run.id]["train/loss"].source == EVENT_FILES
    summaries = {summary.name: summary for summary in ws.store.get_metric_summaries(run.id)}
    assert summaries["train/images"].source == EVENT_FILES and summaries["train/images"].kind == MetricKind.SUMMARY
    assert run.get_metrics("train/images") == {"train/images": {"kind": "images", "count": 2}}
    with pytest.raises(MetricValueError, match="came from the run's TensorBoard event files; it cannot also take points"):
        ws.store.append_metrics([_batch(run.id, "train/loss", [0.1], "")])
    # What an older client reads: the summaries of SDK series carry no field it does not know.
    answer = httpx.get(f"{served.url}/api/v1/runs/{run.id}/metric-summaries", timeout=10).json()
    by_name = {item["name"]: item for item in answer}
    assert "source" not in by_name["sdk_loss"] and by_name["train/loss"]["source"] == EVENT_FILES
    run.complete()

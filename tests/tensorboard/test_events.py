"""EventFileWriter: files read back by TensorBoard's own loader and served by a real TensorBoard."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_file_loader import (
    EventFileLoader,
    RawEventFileLoader,
)
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.util import tensor_util

from runhistory.core.errors import InvalidNameError, MetricValueError, RunHistoryError
from runhistory.tensorboard.events import (
    EventFileWriter,
    encode_event,
    encode_scalar_events,
    frame_record,
    png_size,
)
from tests.tensorboard.conftest import TABLE, TRIALS, WALL0, Board, LogData, make_png, poll


def read_events(path: Path) -> list[event_pb2.Event]:
    """Every event of one file, through TensorBoard's loader (which checks both crcs)."""
    return list(EventFileLoader(str(path)).Load())


def only_file(folder: Path) -> Path:
    """The single event file in ``folder``."""
    (path,) = folder.glob("events.out.tfevents.*")
    return path


def proto_scalar(tag: str, step: int, value: float, wall: float, first: bool) -> bytes:
    """A framed scalar event built with the protobuf classes, as tf.summary.scalar writes it."""
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, tensor_shape=tensor_shape_pb2.TensorShapeProto(), float_val=[value]
    )
    summary_value = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
    if first:
        summary_value.metadata.plugin_data.plugin_name = "scalars"
    summary = summary_pb2.Summary(value=[summary_value])
    return encode_event(event_pb2.Event(wall_time=wall, step=step, summary=summary))


# --------------------------------------------------------------------------- encoding


@pytest.mark.parametrize("tag", ["loss", "a/b/ü", "x" * 300])
@pytest.mark.parametrize("with_metadata", [True, False])
@pytest.mark.parametrize("count", [9, 309], ids=["few", "many"])
def test_fast_scalar_bytes_equal_protobuf_serialization(tag: str, with_metadata: bool, count: int) -> None:
    rng = np.random.default_rng(7)
    steps = np.concatenate(
        [[0, 1, 127, 128, 16383, 16384, -1, 2**63 - 1, -(2**63)], rng.integers(-(2**40), 2**40, 300)]
    )[:count]
    rng.shuffle(steps)
    values = rng.normal(size=steps.size).astype(np.float32)
    values[:4] = [np.nan, np.inf, -np.inf, -0.0]
    walls = 1.7e9 + rng.random(steps.size) * 1e4

    fast = encode_scalar_events(tag, steps, values, walls, with_metadata=with_metadata)

    expected = b"".join(
        proto_scalar(tag, int(s), float(v), float(w), with_metadata and i == 0)
        for i, (s, v, w) in enumerate(zip(steps, values, walls))
    )
    assert fast == expected


def test_long_series_bytes_equal_protobuf_serialization() -> None:
    rng = np.random.default_rng(3)
    steps = np.concatenate([np.arange(40_000), rng.integers(-(2**62), 2**62, 40_000)])
    values = rng.normal(size=steps.size)
    walls = WALL0 + np.arange(steps.size) * 1e-3

    fast = encode_scalar_events("metric", steps, values, walls)

    expected = b"".join(
        proto_scalar("metric", int(s), float(np.float32(v)), float(w), i == 0)
        for i, (s, v, w) in enumerate(zip(steps, values, walls))
    )
    assert fast == expected


def test_frame_record_matches_tensorboard_crc() -> None:
    data = b"some event bytes" * 7
    framed = frame_record(data)
    header = struct.pack("<Q", len(data))
    assert framed[:8] == header
    assert struct.unpack("<I", framed[8:12])[0] == masked_crc32c(header)
    assert framed[12:-4] == data
    assert struct.unpack("<I", framed[-4:])[0] == masked_crc32c(data)


def test_add_scalar_one_by_one_writes_the_protobuf_bytes(tmp_path: Path) -> None:
    points = [(0, 0.25), (1, -3.5), (200, 1e39), (-5, float("nan")), (2**62, np.float32(7.0))]
    stored = [0.25, -3.5, float("inf"), float("nan"), 7.0]  # float32 overflows to inf
    with EventFileWriter(tmp_path) as writer:
        for i, (step, value) in enumerate(points):
            writer.add_scalar("loss", value, step, WALL0 + i)
    expected = b"".join(
        proto_scalar("loss", step, stored[i], WALL0 + i, i == 0) for i, (step, _) in enumerate(points)
    )
    assert writer.path.read_bytes().endswith(expected)


def test_encode_scalar_events_accepts_lists_and_one_wall_time() -> None:
    data = encode_scalar_events("t", [0, 1, 2], [1, 2.5, 3], 123.5)
    events = [event_pb2.Event.FromString(r) for r in _records(data)]
    assert [e.step for e in events] == [0, 1, 2]
    assert {e.wall_time for e in events} == {123.5}
    assert [e.summary.value[0].tensor.float_val[0] for e in events] == [1.0, 2.5, 3.0]


def test_encode_scalar_events_empty_series_is_empty() -> None:
    assert encode_scalar_events("t", [], [], []) == b""


def _records(data: bytes) -> list[bytes]:
    """Split framed TFRecord bytes into payloads."""
    out, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack("<Q", data[offset : offset + 8])
        out.append(data[offset + 12 : offset + 12 + length])
        offset += 16 + length
    return out


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda w: w.add_scalars("", [1], [1.0]), InvalidNameError),
        (lambda w: w.add_scalar("t", "high", 1), MetricValueError),
        (lambda w: w.add_scalars("t", [1.5], [1.0]), MetricValueError),
        (lambda w: w.add_scalars("t", [1, 2], [1.0]), ValueError),
        (lambda w: w.add_scalars("t", [1], ["x"]), MetricValueError),
        (lambda w: w.add_scalars("t", [1], ["1.5"]), MetricValueError),
        (lambda w: w.add_scalars("t", [2**64], [1.0]), MetricValueError),
        (lambda w: w.add_scalar("t", 1.0, True), MetricValueError),
        (lambda w: w.add_scalar("t", 1.0, 2**63), MetricValueError),
        (lambda w: w.add_text("t", "x", 1.5), MetricValueError),
        (lambda w: w.add_image("t", b"GIF89a....", 1), MetricValueError),
        (lambda w: w.add_text("t", [["a", "b"], ["c"]], 1), MetricValueError),
        (lambda w: w.add_hparams_session({"lr": [1, 2]}), MetricValueError),
    ],
)
def test_invalid_input_is_refused(
    tmp_path: Path, call: Callable[[EventFileWriter], object], error: type[Exception]
) -> None:
    with EventFileWriter(tmp_path) as writer:
        writer.add_scalar("t", 0.5, 0, WALL0)  # later calls for "t" take the one-point fast path
        with pytest.raises(error):
            call(writer)
    assert len(read_events(writer.path)) == 2


# --------------------------------------------------------------------------- files


def test_file_name_and_version_event(tmp_path: Path) -> None:
    with EventFileWriter(tmp_path, filename_suffix=".v2") as writer:
        path = writer.path
    assert path.parent == tmp_path
    assert path.name.startswith("events.out.tfevents.") and path.name.endswith(".v2")
    (event,) = read_events(path)
    assert event.file_version == "brain.Event:2"


def test_two_writers_in_one_second_get_two_files(tmp_path: Path) -> None:
    with EventFileWriter(tmp_path) as first, EventFileWriter(tmp_path) as second:
        assert first.path != second.path
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2


def test_events_are_buffered_until_flush_and_close_is_idempotent(tmp_path: Path) -> None:
    writer = EventFileWriter(tmp_path)
    writer.add_scalar("t", 1.0, 1, WALL0)
    assert len(read_events(writer.path)) == 1
    writer.flush()
    assert len(read_events(writer.path)) == 2
    writer.close()
    writer.close()
    assert writer.closed
    with pytest.raises(RunHistoryError):
        writer.add_scalar("t", 2.0, 2)


def test_large_series_is_written_in_blocks(tmp_path: Path) -> None:
    steps = np.arange(20_000)
    with EventFileWriter(tmp_path, buffer_bytes=1 << 16) as writer:
        writer.add_scalars("a", steps[:10_000], steps[:10_000] * 0.5, WALL0)
        writer.add_scalars("a", steps[10_000:], steps[10_000:] * 0.5, WALL0)
        written_before_close = writer.path.stat().st_size
    events = read_events(writer.path)[1:]
    assert written_before_close > 1 << 16
    assert [e.step for e in events] == list(range(20_000))
    assert sum(1 for e in events if e.summary.value[0].HasField("metadata")) == 1


def test_scalars_read_back_exactly(logdata: LogData) -> None:
    series = logdata.series[("trial_a", "loss")]
    events = [
        e for e in read_events(only_file(logdata.root / "trial_a"))
        if e.summary.value and e.summary.value[0].tag == "loss"
    ]  # fmt: skip
    values = [tensor_util.make_ndarray(e.summary.value[0].tensor) for e in events]
    assert all(v.dtype == np.float32 and v.shape == () for v in values)
    assert np.array_equal(np.array(values), series.values)
    assert [e.step for e in events] == series.steps.tolist()
    assert [e.wall_time for e in events] == series.walls.tolist()
    assert events[0].summary.value[0].metadata.plugin_data.plugin_name == "scalars"


def test_text_image_histogram_read_back(logdata: LogData) -> None:
    by_tag = {
        e.summary.value[0].tag: e
        for e in read_events(only_file(logdata.root / "trial_b"))
        if e.summary.value
    }
    table = tensor_util.make_ndarray(by_tag["table"].summary.value[0].tensor)
    assert table.shape == (3, 2) and table.tolist() == [[c.encode() for c in row] for row in TABLE]
    assert by_tag["table"].summary.value[0].metadata.plugin_data.plugin_name == "text"
    image = by_tag["samples/image"].summary.value[0]
    assert image.metadata.plugin_data.plugin_name == "images"
    assert list(image.tensor.string_val) == [b"5", b"3", logdata.png]
    histogram = tensor_util.make_ndarray(by_tag["weights"].summary.value[0].tensor)
    assert histogram.shape == (10, 3)
    assert histogram[:, 2].sum() == 1000 and histogram[0, 0] == 0 and histogram[-1, 1] == 999


def test_hparams_summaries_parse_with_the_plugin_metadata(logdata: LogData) -> None:
    by_tag = {
        e.summary.value[0].tag: e.summary.value[0].metadata.plugin_data.content
        for e in read_events(only_file(logdata.root / "trial_a"))
        if e.summary.value
    }
    start = hparams_metadata.parse_session_start_info_plugin_data(
        by_tag[hparams_metadata.SESSION_START_INFO_TAG]
    )
    assert start.hparams["lr"].number_value == 0.1
    assert start.hparams["optimizer"].string_value == "adam"
    assert start.hparams["batchnorm"].bool_value is True
    assert start.start_time_secs == WALL0
    end = hparams_metadata.parse_session_end_info_plugin_data(
        by_tag[hparams_metadata.SESSION_END_INFO_TAG]
    )
    assert end.status == 1 and end.end_time_secs == WALL0 + 100  # STATUS_SUCCESS
    root_events = read_events(only_file(logdata.root))
    experiment = hparams_metadata.parse_experiment_plugin_data(
        root_events[1].summary.value[0].metadata.plugin_data.content
    )
    assert [info.name for info in experiment.hparam_infos] == list(TRIALS["trial_a"])
    assert [m.name.tag for m in experiment.metric_infos] == ["loss", "accuracy"]


def test_png_size_reads_the_header() -> None:
    assert png_size(make_png(17, 4)) == (17, 4)


def test_raw_loader_sees_every_record_of_every_kind(logdata: LogData) -> None:
    raw = list(RawEventFileLoader(str(only_file(logdata.root / "trial_a"))).Load())
    series = logdata.series[("trial_a", "loss")]
    # version, session start, session end, loss points, accuracy, 2 texts, image, histogram
    assert len(raw) == 1 + 2 + series.steps.size + 1 + 2 + 1 + 1


# --------------------------------------------------------------------------- served by TensorBoard


def test_runs_are_listed(board: Board) -> None:
    runs = poll(lambda: board.get("data/runs"), lambda r: {"trial_a", "trial_b", "live"} <= set(r))
    assert {".", "trial_a", "trial_b", "live"} <= set(runs)


def test_scalars_are_served_exactly(board: Board, logdata: LogData) -> None:
    tags = board.get("data/plugin/scalars/tags")
    assert set(tags["trial_a"]) == {"loss", "accuracy"}
    for run in [*TRIALS, "big_steps"]:
        served = board.get("data/plugin/scalars/scalars", run=run, tag="loss")
        assert served == logdata.series[(run, "loss")].rows()
    accuracy = board.get("data/plugin/scalars/scalars", run="trial_b", tag="accuracy")
    assert accuracy == [[WALL0, 3, float(np.float32(0.6))]]


def test_steps_that_go_back_replace_points_only_with_the_rust_loader(board: Board) -> None:
    rows = board.get("data/plugin/scalars/scalars", run="rewind", tag="loss")
    served = [(step, value) for _, step, value in rows]
    if board.load_fast:
        assert served == [(0, 0.0), (1, 1.0), (2, 20.0), (3, 30.0)]
    else:
        assert served == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0), (2, 20.0), (3, 30.0)]


def test_text_and_tables_are_served(board: Board) -> None:
    tags = board.get("data/plugin/text/tags")
    assert set(tags["trial_a"]) == {"notes", "table"}
    (notes,) = board.get("data/plugin/text/text", run="trial_a", tag="notes")
    assert notes["step"] == 5 and "<strong>trial_a</strong>" in notes["text"]
    (table,) = board.get("data/plugin/text/text", run="trial_a", tag="table")
    assert table["step"] == 6 and table["text"].count("<tr>") == 3
    assert "<td><p>accuracy</p></td>" in table["text"]


def test_images_are_served(board: Board, logdata: LogData) -> None:
    tags = board.get("data/plugin/images/tags")
    assert tags["trial_a"]["samples/image"]["samples"] == 1
    (image,) = board.get("data/plugin/images/images", run="trial_a", tag="samples/image", sample=0)
    assert image["step"] == 7 and image["wall_time"] == WALL0
    response = board.client.get(f"data/plugin/images/individualImage?{image['query']}")
    assert response.status_code == 200 and response.content == logdata.png
    assert response.headers["content-type"] == "image/png"


def test_histograms_are_served(board: Board) -> None:
    assert "weights" in board.get("data/plugin/histograms/tags")["trial_b"]
    ((wall, step, buckets),) = board.get("data/plugin/histograms/histograms", run="trial_b", tag="weights")
    assert (wall, step) == (WALL0, 8)
    assert len(buckets) == 10 and sum(b[2] for b in buckets) == 1000
    assert buckets[0][0] == 0.0 and buckets[-1][1] == 999.0


def test_hparams_experiment_is_served(board: Board) -> None:
    experiment = board.post("data/plugin/hparams/experiment", {"experimentName": ""})
    infos = {info["name"]: info for info in experiment["hparamInfos"]}
    assert set(infos) == set(TRIALS["trial_a"])
    assert infos["optimizer"]["domainDiscrete"] == ["adam", "sgd"]
    assert infos["batchnorm"]["type"] == "DATA_TYPE_BOOL"
    assert [m["name"]["tag"] for m in experiment["metricInfos"]] == ["loss", "accuracy"]


def test_hparams_session_groups_are_served(board: Board, logdata: LogData) -> None:
    body = {
        "experimentName": "",
        "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
        "colParams": [{"hparam": name, "includeInResult": True} for name in TRIALS["trial_a"]]
        + [{"metric": {"group": "", "tag": "loss"}, "includeInResult": True}],
        "startIndex": 0,
        "sliceSize": 100,
    }
    groups = board.post("data/plugin/hparams/session_groups", body)["sessionGroups"]
    by_session = {group["sessions"][0]["name"]: group for group in groups}
    assert set(by_session) == set(TRIALS)
    for run, hparams in TRIALS.items():
        group = by_session[run]
        assert group["hparams"] == hparams
        session = group["sessions"][0]
        assert session["status"] == "STATUS_SUCCESS"
        assert (session["startTimeSecs"], session["endTimeSecs"]) == (WALL0, WALL0 + 100)
        (loss,) = [m for m in group["metricValues"] if m["name"]["tag"] == "loss"]
        series = logdata.series[(run, "loss")]
        assert loss["value"] == float(series.values[-1]) and loss["trainingStep"] == series.steps[-1]


def test_appended_events_and_new_files_appear_live(board: Board, logdata: LogData) -> None:
    assert logdata.live is not None
    first = logdata.next_live_step
    steps = list(range(first, first + 5))
    logdata.next_live_step += 5

    def progress() -> list[int]:
        return [row[1] for row in board.get("data/plugin/scalars/scalars", run="live", tag="progress")]

    logdata.live.add_scalars("progress", steps, [float(s) for s in steps], WALL0 + first)
    logdata.live.flush()
    assert poll(progress, lambda served: served[-5:] == steps)[-5:] == steps

    newer_tag = "second_file_" + ("fast" if board.load_fast else "python")
    with EventFileWriter(logdata.root / "live") as newer:
        newer.add_scalar(newer_tag, 1.0, 1, WALL0)
    later = [first + 5]
    logdata.next_live_step += 1
    logdata.live.add_scalars("progress", later, [1.0], WALL0 + first)
    logdata.live.flush()

    tags = poll(lambda: board.get("data/plugin/scalars/tags").get("live", {}), lambda t: newer_tag in t)
    assert newer_tag in tags
    assert poll(progress, lambda served: served[-1] == later[0])[-1] == later[0]

"""EventLogFollower stores a folder's event files into a real run, incrementally and exactly once.

Files come from real writers (PyTorch's SummaryWriter, TensorBoard's EventFileWriter); a writer
that appends is played back by copying a real file's bytes into the followed folder piece by
piece, so that a piece can end anywhere, mid-record included. The store is the workspace's own
(SQLite, and PostgreSQL for the tests marked ``both_stores``).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pytest
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, types_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from torch.utils.tensorboard import SummaryWriter

from runhistory import Experiment, Run, Workspace
from runhistory.core.errors import StoreUnavailableError
from runhistory.eventlogs.follow import READ_BYTES, SESSION_STATUS_TAG, EventLogFollower
from runhistory.eventlogs.records import frame_record, scan_records
from runhistory.store.base import MetricBatch, MetricKind, MetricSeries, MetricSource, RunStore

WALL0 = 1_700_000_000.5
FILE_NAME = "events.out.tfevents.1700000000.host.1.0"
HEADER = 12


class Reports(list):
    """What a follower reported, in order (its ``report`` callback)."""

    def __call__(self, message: str) -> None:
        self.append(message)

    def containing(self, text: str) -> list[str]:
        """The reports that mention ``text``."""
        return [message for message in self if text in message]


@pytest.fixture
def run(exp: Experiment) -> Iterator[Run]:
    """An interactive run of the test's workspace (SQLite unless the test is ``both_stores``)."""
    run = exp.start_logging()
    yield run
    run.complete()


def follower(ws: Workspace, run: Run, folder: Path, reports: Reports | None = None, **options: Any) -> EventLogFollower:
    """A follower of ``folder`` into ``run`` through the workspace's store."""
    return EventLogFollower(ws.store, run.id, folder, report=reports if reports is not None else Reports(), **options)


def series(ws: Workspace, run: Run) -> dict[str, MetricSeries]:
    """Every series of the run, as the store reads it back."""
    return ws.store.get_metrics(run.id)


def scalar_event(tag: str, step: int, value: float, wall: float | None = None) -> event_pb2.Event:
    """A ``simple_value`` scalar event at ``step`` (its wall time derived from the step unless given)."""
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
    return event_pb2.Event(wall_time=WALL0 + step if wall is None else wall, step=step, summary=summary)


def written_file(folder: Path, events: Iterable[event_pb2.Event]) -> bytes:
    """The bytes TensorBoard's EventFileWriter writes for ``events`` (in a scratch folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = EventFileWriter(str(folder))
    for item in events:
        writer.add_event(item)
    writer.close()
    (path,) = folder.glob("*tfevents*")
    return path.read_bytes()


def loss_file(scratch: Path, steps: range, tag: str = "loss") -> bytes:
    """A real event file of ``tag`` at ``steps`` (value 1/step)."""
    return written_file(scratch, (scalar_event(tag, step, 1.0 / step) for step in steps))


def record_offsets(data: bytes) -> list[int]:
    """The offset of each record's header in ``data``."""
    return (scan_records(data).starts - HEADER).tolist()


def append(path: Path, data: bytes) -> None:
    """What a writer's flush does: more bytes at the end of the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as file:
        file.write(data)


def steps_of(ws: Workspace, run: Run, name: str) -> list[int]:
    """The stored steps of series ``name``."""
    return series(ws, run)[name].steps.tolist()


# --------------------------------------------------------------------------- incremental


@pytest.mark.both_stores
def test_points_appear_while_a_summary_writer_appends_and_none_is_doubled(ws: Workspace, run: Run, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    writer = SummaryWriter(str(logs))
    sync = follower(ws, run, logs)
    for round_ in range(4):
        for step in range(round_ * 50, (round_ + 1) * 50):
            writer.add_scalar("loss", 1.0 / (step + 1), step)
            writer.add_scalar("acc", step / 200.0, step)
        writer.flush()
        result = sync.sync()
        assert result.points == 100 and result.records == 100 + (round_ == 0)  # the file's version record first
        stored = series(ws, run)
        assert stored["loss"].steps.tolist() == list(range((round_ + 1) * 50))
        assert stored["acc"].values == [float(np.float32(step / 200.0)) for step in range((round_ + 1) * 50)]
        assert stored["loss"].source == MetricSource.EVENT_FILES
    assert sync.sync().points == 0  # nothing new, nothing again
    writer.close()
    assert np.allclose(series(ws, run)["loss"].values, [1.0 / (step + 1) for step in range(200)], rtol=1e-6)
    assert run.get_metrics()["loss"][:3] == series(ws, run)["loss"].values[:3]


def test_wall_times_and_values_are_the_events_own(ws: Workspace, run: Run, tmp_path: Path) -> None:
    points = [(0, 1.5), (1, math.nan), (2, math.inf), (2**62, -0.25), (-3, 2.0)]
    events = [scalar_event("loss", step, value, WALL0 + index * 0.25) for index, (step, value) in enumerate(points)]
    logs = tmp_path / "logs"
    append(logs / FILE_NAME, written_file(tmp_path / "scratch", events))
    follower(ws, run, logs).sync()
    stored = series(ws, run)["loss"]
    assert stored.steps.tolist() == [0, 1, 2, 2**62, -3]
    assert stored.times.tolist() == [WALL0 + index * 0.25 for index in range(len(points))]
    assert stored.values[0] == 1.5 and math.isnan(stored.values[1]) and stored.values[2] == math.inf
    assert stored.values[3:] == [-0.25, 2.0]


def test_a_follower_taking_over_from_offsets_adds_nothing_twice(ws: Workspace, run: Run, tmp_path: Path) -> None:
    data = loss_file(tmp_path / "scratch", range(1, 301))
    offsets = record_offsets(data)  # record 0 is the file's version: record k holds step k
    logs = tmp_path / "logs"
    path = logs / FILE_NAME
    append(path, data[: offsets[150]])
    first = follower(ws, run, logs)
    first.sync()
    assert first.offsets == {FILE_NAME: offsets[150]}
    append(path, data[offsets[150] :])
    second = follower(ws, run, logs, offsets=first.offsets)
    assert second.sync().points == 151  # steps 150 to 300
    assert follower(ws, run, logs, offsets=second.offsets).sync().points == 0
    assert steps_of(ws, run, "loss") == list(range(1, 301))


@pytest.mark.parametrize("cut", [3, HEADER, HEADER + 4, -1], ids=["in-length", "after-header", "in-payload", "last-byte"])
def test_a_truncated_last_record_waits_and_is_stored_once_completed(cut: int, ws: Workspace, run: Run, tmp_path: Path) -> None:
    data = loss_file(tmp_path / "scratch", range(1, 41))
    last = record_offsets(data)[-1]
    split = last + cut if cut > 0 else len(data) + cut
    logs = tmp_path / "logs"
    append(logs / FILE_NAME, data[:split])
    reports = Reports()
    sync = follower(ws, run, logs, reports)
    assert sync.sync().points == 39
    assert sync.sync().points == 0  # still waiting
    assert sync.offsets == {FILE_NAME: last}
    append(logs / FILE_NAME, data[split:])
    assert sync.sync().points == 1
    assert steps_of(ws, run, "loss") == list(range(1, 41))
    assert reports == []


def test_final_sync_reports_an_incomplete_record_once(ws: Workspace, run: Run, tmp_path: Path) -> None:
    data = loss_file(tmp_path / "scratch", range(1, 11))
    logs = tmp_path / "logs"
    append(logs / FILE_NAME, data[:-7])
    reports = Reports()
    sync = follower(ws, run, logs, reports)
    sync.sync()
    assert reports == []  # not final: the writer may still finish it
    sync.sync(final=True)
    sync.sync(final=True)
    assert len(reports) == 1 and FILE_NAME in reports[0] and "incomplete" in reports[0]
    assert steps_of(ws, run, "loss") == list(range(1, 10))


# --------------------------------------------------------------------------- damage


def test_a_corrupt_record_is_skipped_and_reported_once_across_syncs(ws: Workspace, run: Run, tmp_path: Path) -> None:
    data = bytearray(loss_file(tmp_path / "scratch", range(1, 101)))
    offsets = record_offsets(bytes(data))
    data[offsets[20] + HEADER + 5] ^= 0x20  # the payload of step 20
    logs = tmp_path / "logs"
    reports = Reports()
    sync = follower(ws, run, logs, reports)
    for start, end in ((0, offsets[30]), (offsets[30], offsets[60]), (offsets[60], len(data))):
        append(logs / FILE_NAME, bytes(data[start:end]))
        sync.sync()
    sync.sync(final=True)
    assert steps_of(ws, run, "loss") == [step for step in range(1, 101) if step != 20]
    assert len(reports) == 1 and f"byte {offsets[20]}" in reports[0] and FILE_NAME in reports[0]


@pytest.mark.parametrize("byte, flip", [(9, 0x20), (3, 0x01)], ids=["length-crc", "length-past-the-end"])
def test_a_record_with_a_damaged_header_is_reported_once_and_the_rest_stored(
    byte: int, flip: int, ws: Workspace, run: Run, tmp_path: Path
) -> None:
    data = bytearray(loss_file(tmp_path / "scratch", range(1, 101)))
    offsets = record_offsets(bytes(data))
    data[offsets[20] + byte] ^= flip  # the header of step 20's record
    logs = tmp_path / "logs"
    append(logs / FILE_NAME, bytes(data))
    reports = Reports()
    sync = follower(ws, run, logs, reports)
    sync.sync()
    sync.sync(final=True)
    assert steps_of(ws, run, "loss") == [step for step in range(1, 101) if step != 20]
    assert len(reports) == 1 and FILE_NAME in reports[0], reports


def test_garbage_named_like_an_event_file_holds_up_no_other_file(ws: Workspace, run: Run, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    append(logs / "events.out.tfevents.0.garbage", np.random.default_rng(3).bytes(20 << 20))
    append(logs / "train" / FILE_NAME, loss_file(tmp_path / "scratch", range(1, 51)))
    reports = Reports()
    sync = follower(ws, run, logs, reports)
    sync.sync()
    sync.sync(final=True)
    assert steps_of(ws, run, "train/loss") == list(range(1, 51))
    assert set(series(ws, run)) == {"train/loss"}
    corrupt = reports.containing("corrupt")
    assert len(corrupt) == 1 and "garbage" in corrupt[0], reports


# --------------------------------------------------------------------------- names


def test_tags_are_prefixed_by_their_files_subfolder(ws: Workspace, run: Run, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    for folder, first in (("", 1), ("train", 100), ("eval", 200), ("eval/deep", 300)):
        append(logs / folder / FILE_NAME, loss_file(tmp_path / "scratch" / folder / "x", range(first, first + 5)))
    follower(ws, run, logs).sync()
    stored = series(ws, run)
    assert {name: s.steps.tolist()[0] for name, s in stored.items()} == {
        "loss": 1,
        "train/loss": 100,
        "eval/loss": 200,
        "eval/deep/loss": 300,
    }


def test_a_flat_follower_reads_only_the_folders_own_files_without_prefix(ws: Workspace, run: Run, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    append(logs / FILE_NAME, loss_file(tmp_path / "a", range(1, 4)))
    append(logs / "train" / FILE_NAME, loss_file(tmp_path / "b", range(10, 14)))
    follower(ws, run, logs, recursive=False).sync()
    assert {name: s.steps.tolist() for name, s in series(ws, run).items()} == {"loss": [1, 2, 3]}


@pytest.mark.both_stores
def test_a_tag_the_store_refuses_is_reported_once_and_the_others_are_stored(ws: Workspace, run: Run, tmp_path: Path) -> None:
    long_tag = "x" * 300
    run.log("acc", 0.5)  # the run's own series: event files cannot add to it
    run.flush()
    logs = tmp_path / "logs"
    path = logs / FILE_NAME
    data = written_file(
        tmp_path / "scratch",
        (scalar_event(tag, step, float(step)) for step in range(1, 61) for tag in ("loss", long_tag, "acc")),
    )
    half = record_offsets(data)[90]
    reports = Reports()
    sync = follower(ws, run, logs, reports)
    append(path, data[:half])
    sync.sync()
    append(path, data[half:])
    sync.sync()
    stored = series(ws, run)
    assert stored["loss"].steps.tolist() == list(range(1, 61))
    assert stored["acc"].values == [0.5] and stored["acc"].source == MetricSource.SDK
    assert long_tag not in stored
    assert len(reports) == 2, reports
    assert len(reports.containing("'acc'")) == 1 and len(reports.containing("300 characters")) == 1


# --------------------------------------------------------------------------- hparams, text and other kinds


def test_hparams_become_properties_and_the_session_status_a_tag(ws: Workspace, run: Run, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    writer = SummaryWriter(str(logs))
    rng = np.random.default_rng(5)
    for step in range(4):
        writer.add_scalar("loss", 1.0 / (step + 1), step)
        writer.add_text("notes", f"epoch {step} ✓", step)
        writer.add_histogram("weights", rng.normal(size=50), step)
        writer.add_image("sample", rng.random((3, 4, 4)), step)
    writer.add_hparams({"optimizer": "adam", "lr": 0.01, "layers": 3}, {"hparam/score": 0.9}, run_name="hp")
    writer.close()
    follower(ws, run, logs).sync()
    properties = ws.store.get_properties(run.id)
    assert {key: properties[key] for key in ("optimizer", "lr", "layers")} == {"optimizer": "adam", "lr": "0.01", "layers": "3"}
    assert ws.store.get_tags(run.id)[SESSION_STATUS_TAG] == "success"
    stored = series(ws, run)
    assert stored["notes/text_summary"].values == [f"epoch {step} ✓" for step in range(4)]
    assert stored["notes/text_summary"].kind == MetricKind.SCALAR
    assert stored["hp/hparam/score"].values == [pytest.approx(0.9)]
    for name, kind in (("weights", "histograms"), ("sample", "images")):
        assert stored[name].kind == MetricKind.SUMMARY and stored[name].values == [kind] * 4
        assert stored[name].steps.tolist() == [0, 1, 2, 3]
    metrics = run.get_metrics()
    assert metrics["weights"] == {"kind": "histograms", "count": 4}
    assert metrics["sample"] == {"kind": "images", "count": 4}


# --------------------------------------------------------------------------- resends


class LosesOneReply:
    """The workspace's store, except that the first ``append_metrics`` call's reply is lost: the
    store applies it, the caller hears that the store is away (as over a dropped connection)."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self.calls: list[tuple[list[MetricBatch], str | None]] = []

    def append_metrics(self, batches: Iterable[MetricBatch], batch_id: str | None = None) -> None:
        batches = list(batches)
        self.calls.append((batches, batch_id))
        self.store.append_metrics(batches, batch_id=batch_id)
        if len(self.calls) == 1:
            raise StoreUnavailableError("The reply to append_metrics was lost on the way back.")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.mark.both_stores
def test_a_piece_sent_again_after_a_lost_reply_adds_nothing(ws: Workspace, run: Run, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    append(logs / FILE_NAME, loss_file(tmp_path / "scratch", range(1, 101)))
    store = LosesOneReply(ws.store)
    sync = EventLogFollower(store, run.id, logs, report=Reports())  # type: ignore[arg-type]
    with pytest.raises(StoreUnavailableError):
        sync.sync()
    assert sync.offsets.get(FILE_NAME, 0) == 0  # not taken: it will be sent again
    sync.sync()
    assert steps_of(ws, run, "loss") == list(range(1, 101))
    (_, first_id), (second_batches, second_id) = store.calls
    assert first_id == second_id and first_id is not None
    ws.store.append_metrics(second_batches, batch_id=second_id)  # once more, directly
    assert steps_of(ws, run, "loss") == list(range(1, 101))


def test_the_batch_id_depends_on_the_run_the_file_and_the_bytes(ws: Workspace, exp: Experiment, tmp_path: Path) -> None:
    """Two runs following copies of one file each get every point: their pieces' ids differ."""
    logs = tmp_path / "logs"
    append(logs / FILE_NAME, loss_file(tmp_path / "scratch", range(1, 21)))
    runs = [exp.start_logging(), exp.start_logging()]
    for each in runs:
        follower(ws, each, logs).sync()
    copy = tmp_path / "copy"
    shutil.copytree(logs, copy)
    (copy / FILE_NAME).rename(copy / (FILE_NAME + ".b"))
    follower(ws, runs[0], copy).sync()
    assert [steps_of(ws, each, "loss") for each in runs] == [list(range(1, 21)) * 2, list(range(1, 21))]
    for each in runs:
        each.complete()


def test_a_record_larger_than_one_read_is_passed_over_and_what_follows_is_stored(
    ws: Workspace, run: Run, tmp_path: Path
) -> None:
    """A record bigger than READ_BYTES (a huge graph or blob) never fits in one read: it is reported
    once and stepped over, its bytes still handed on (the importer copies them), and the scalars
    after it are stored."""
    folder = tmp_path / "logs"
    folder.mkdir()
    # Framed here: TensorBoard's own writer checksums in pure Python (seconds for 64 MiB).
    huge = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[b"x" * (READ_BYTES + 1024)])
    events = [event_pb2.Event(wall_time=WALL0, step=0, summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="blob", tensor=huge)]))]
    for step in range(5):
        value = summary_pb2.Summary.Value(tag="loss", simple_value=1.0 / (step + 1))
        events.append(event_pb2.Event(wall_time=WALL0 + step, step=step, summary=summary_pb2.Summary(value=[value])))
    path = folder / FILE_NAME
    path.write_bytes(b"".join(frame_record(event.SerializeToString()) for event in events))
    copied = bytearray()
    reports = Reports()

    def on_stored(name: str, offset: int, piece: bytes) -> None:
        assert offset == len(copied)
        copied.extend(piece)

    follower(ws, run, folder, reports, on_stored=on_stored).sync(final=True)
    stored = series(ws, run)
    assert stored["loss"].steps.tolist() == [0, 1, 2, 3, 4]
    assert "blob" not in stored
    assert len(reports.containing("left out of the run history")) == 1
    assert bytes(copied) == path.read_bytes()

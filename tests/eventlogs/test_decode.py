"""decode_records reads what real writers write exactly as TensorBoard's own loader does.

Writers: PyTorch's and tensorboardX's ``SummaryWriter`` and TensorBoard's ``EventFileWriter``
(tensor-form scalars of every dtype, text, hparams and the kinds that stay in the files, built
from the plugins' own metadata helpers). The reference is TensorBoard's plugin event accumulator
(see tests/eventlogs/reference.py). TensorBoard's ``pr_curve.summary.pb`` and
``hparams.summary`` need TensorFlow: their protos are built here from the plugins' metadata
modules instead, which is what those helpers write.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import tensorboardX
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.audio import metadata as audio_metadata
from tensorboard.plugins.histogram import metadata as histogram_metadata
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.plugins.image import metadata as image_metadata
from tensorboard.plugins.pr_curve import metadata as pr_curve_metadata
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.plugins.text import metadata as text_metadata
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.util import tensor_util
from torch.utils.tensorboard import SummaryWriter as TorchWriter

from runhistory.eventlogs.decode import TagPlugins, decode_records
from runhistory.eventlogs.records import scan_records
from tests.eventlogs.reference import assert_same_as_tensorboard, decode_file, event_file_paths, tensorboard_tags

WALL0 = 1_700_000_000.125
STEPS = 120  # enough records of one length for the fast path
WRITERS = {"torch": TorchWriter, "tensorboardX": tensorboardX.SummaryWriter}
UNICODE_TEXT = "accuracy ✓ — naïve 精度 🚀"
HPARAMS = {"optimizer": "adam", "lr": 0.01, "layers": 4, "batchnorm": True}


def curve(step: int) -> float:
    """A value per step that is neither round nor repeated."""
    return math.sin(step / 7.0) * 3.0 + step / 11.0


# --------------------------------------------------------------------------- the summary writers


def write_with_summary_writer(writer_class: Callable[..., Any], logdir: Path) -> None:
    """Every kind a training script logs with a SummaryWriter, including its separate files."""
    writer = writer_class(str(logdir))
    rng = np.random.default_rng(0)
    for step in range(STEPS):
        writer.add_scalar("train/loss", curve(step), step)
        writer.add_scalar("train/acc", 1.0 / (step + 1), step)
    for step in range(3):
        writer.add_scalars("compare", {"a": float(step), "b": step * 2.5}, step)
        writer.add_text("notes", f"{UNICODE_TEXT} {step}", step)
        writer.add_histogram("weights", rng.normal(size=100), step)
        writer.add_image("sample", rng.random((3, 8, 8)), step)
        if writer_class is TorchWriter:  # tensorboardX encodes audio with soundfile, not installed here
            writer.add_audio("sound", np.sin(np.arange(800) / 10.0).astype(np.float32), step, sample_rate=8000)
        writer.add_pr_curve("pr", rng.integers(0, 2, 50), rng.random(50), step)
    writer.add_hparams(HPARAMS, {"hparam/score": 0.75})
    writer.close()


@pytest.mark.parametrize("writer_name", list(WRITERS))
def test_summary_writer_files_decode_as_tensorboard_reads_them(writer_name: str, tmp_path: Path) -> None:
    write_with_summary_writer(WRITERS[writer_name], tmp_path)
    paths = event_file_paths(tmp_path)
    assert len(paths) >= 4  # the main file, one per add_scalars key, the hparams run
    decoded = {path: assert_same_as_tensorboard(path) for path in paths}

    main = decoded[next(path for path in paths if path.parent == tmp_path)]
    steps, _, values = main.scalars["train/loss"].ordered()
    assert steps.tolist() == list(range(STEPS))
    assert np.allclose(values, [curve(step) for step in range(STEPS)], rtol=1e-6)  # float32 on disk
    assert list(main.texts) == ["notes/text_summary"]  # both writers name text summaries so
    assert main.texts["notes/text_summary"].ordered()[2] == [f"{UNICODE_TEXT} {step}" for step in range(3)]
    kinds = {tag: (set(points.ordered()[2]), len(points)) for tag, points in main.summaries.items()}
    expected = {"weights": ({"histograms"}, 3), "sample": ({"images"}, 3), "pr": ({"pr_curves"}, 3)}
    if writer_name == "torch":
        expected["sound"] = ({"audio"}, 3)
    assert kinds == expected

    (hparams_run,) = [events for events in decoded.values() if events.hparams]
    # torch writes a bool hparam as the number 1 (TensorBoard shows 1 too); tensorboardX as a bool
    batchnorm = "1" if writer_name == "torch" else "True"
    assert hparams_run.hparams == {"optimizer": "adam", "lr": "0.01", "layers": "4", "batchnorm": batchnorm}
    assert hparams_run.session_status == "success"
    assert hparams_run.scalars["hparam/score"].ordered()[2].tolist() == [0.75]
    compared = sorted(
        (path.parent.relative_to(tmp_path).as_posix(), events.scalars["compare"].ordered()[2].tolist())
        for path, events in decoded.items()
        if "compare" in events.scalars
    )
    folder = "compare_" if writer_name == "torch" else "compare/"  # one file per key, in its own folder
    assert compared == [(folder + "a", [0.0, 1.0, 2.0]), (folder + "b", [0.0, 2.5, 5.0])]


def test_new_style_torch_scalars_are_tensors_read_like_simple_values(tmp_path: Path) -> None:
    writer = TorchWriter(str(tmp_path))
    for step in range(STEPS):
        writer.add_scalar("loss", curve(step), step, new_style=True)
    writer.close()
    (path,) = event_file_paths(tmp_path)
    decoded = assert_same_as_tensorboard(path)
    assert len(decoded.scalars["loss"]) == STEPS


# --------------------------------------------------------------------------- TensorBoard's EventFileWriter


def tensor_value(tag: str, tensor: Any, metadata: summary_pb2.SummaryMetadata | None) -> summary_pb2.Summary.Value:
    """One summary value holding ``tensor`` (a TensorProto), with plugin metadata when given."""
    value = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
    if metadata is not None:
        value.metadata.CopyFrom(metadata)
    return value


def event(step: int, *values: summary_pb2.Summary.Value, wall: float | None = None) -> event_pb2.Event:
    """An event at ``step`` (wall time derived from it unless given) holding ``values``."""
    wall_time = WALL0 + step * 0.5 if wall is None else wall
    return event_pb2.Event(wall_time=wall_time, step=step, summary=summary_pb2.Summary(value=list(values)))


def write_events(logdir: Path, events: list[event_pb2.Event]) -> Path:
    """The events written by TensorBoard's own EventFileWriter; the file's path."""
    writer = EventFileWriter(str(logdir))
    for item in events:
        writer.add_event(item)
    writer.close()
    (path,) = event_file_paths(logdir)
    return path


def scalar_events(tag: str, steps: list[int], values: list[float], make: Callable[[float], Any], first_only: bool) -> list[event_pb2.Event]:
    """Tensor-form scalars as ``tf.summary.scalar`` v2 writes them: the scalars metadata on the
    first point only (``first_only``) or on every point."""
    metadata = scalar_metadata.create_summary_metadata(display_name=tag, description="")
    return [
        event(step, tensor_value(tag, tensor_util.make_tensor_proto(make(value)), metadata if (index == 0 or not first_only) else None))
        for index, (step, value) in enumerate(zip(steps, values))
    ]


SPECIAL_STEPS = [0, *range(1, STEPS), 2**62, -5, -(2**40)]


def special_values(count: int) -> list[float]:
    """Curve values with NaN and both infinities among them."""
    values = [curve(step) for step in range(count)]
    values[3], values[5], values[8] = math.nan, math.inf, -math.inf
    return values


@pytest.mark.parametrize(
    "dtype, first_only",
    [(np.float64, False), (np.float64, True), (np.float32, True), (np.int64, True), (np.float16, True)],
    ids=["float64", "float64-metadata-once", "float32-metadata-once", "int64", "float16"],
)
def test_tensor_scalars_of_every_dtype_keep_steps_and_values(dtype: type, first_only: bool, tmp_path: Path) -> None:
    values = special_values(len(SPECIAL_STEPS))
    if dtype is np.int64:
        values = [float(round(v * 1000)) if math.isfinite(v) else float(index) for index, v in enumerate(values)]
    path = write_events(tmp_path, scalar_events("metric", SPECIAL_STEPS, values, dtype, first_only))
    decoded = assert_same_as_tensorboard(path)
    steps, _, read = decoded.scalars["metric"].ordered()
    assert steps.tolist() == SPECIAL_STEPS
    expected = np.array(values, dtype=dtype).astype(np.float64)
    assert np.array_equal(read, expected, equal_nan=True)
    if dtype is not np.int64:
        assert math.isnan(read[3]) and read[5] == math.inf and read[8] == -math.inf


def test_simple_values_keep_huge_and_negative_steps_and_nan(tmp_path: Path) -> None:
    values = special_values(len(SPECIAL_STEPS))
    events = [event(step, summary_pb2.Summary.Value(tag="loss", simple_value=value)) for step, value in zip(SPECIAL_STEPS, values)]
    path = write_events(tmp_path, events)
    decoded = assert_same_as_tensorboard(path)
    steps, times, read = decoded.scalars["loss"].ordered()
    assert steps.tolist() == SPECIAL_STEPS
    assert times.tolist() == [WALL0 + step * 0.5 for step in SPECIAL_STEPS]
    assert np.array_equal(read, np.array(values, dtype=np.float32).astype(np.float64), equal_nan=True)


@pytest.mark.parametrize(
    "steps",
    [range(-200, -100), [0] * 100, range(2**62, 2**62 + 100), range(100, 300)],
    ids=["negative", "all-zero", "huge", "two-byte"],
)
def test_long_runs_of_one_step_width_keep_their_steps(steps: Any, tmp_path: Path) -> None:
    steps = list(steps)
    events = [event(step, summary_pb2.Summary.Value(tag="simple", simple_value=float(i)), wall=WALL0 + i) for i, step in enumerate(steps)]
    metadata = scalar_metadata.create_summary_metadata(display_name="", description="")
    for i, step in enumerate(steps):
        tensor = tensor_util.make_tensor_proto(np.float64(i / 3.0))
        events.append(event(step, tensor_value("tensor", tensor, metadata if i == 0 else None), wall=WALL0 + i))
    decoded = assert_same_as_tensorboard(write_events(tmp_path, events))
    for tag in ("simple", "tensor"):
        assert decoded.scalars[tag].ordered()[0].tolist() == steps
    assert decoded.scalars["tensor"].ordered()[2].tolist() == [i / 3.0 for i in range(len(steps))]


@pytest.mark.parametrize("tags", [8, 80], ids=["fewer-than-templates", "more-than-templates"])
def test_many_interleaved_tags_of_equal_length_keep_their_own_points(tags: int, tmp_path: Path) -> None:
    names = [f"layer{index:02d}/grad" for index in range(tags)]
    rng = np.random.default_rng(tags)
    expected = {name: rng.normal(size=60) for name in names}
    metadata = scalar_metadata.create_summary_metadata(display_name="", description="")
    events = []
    for step in range(1, 61):  # one byte of step varint each: every record of a kind has one length
        for name in names:
            value = expected[name][step - 1]
            events.append(event(step, summary_pb2.Summary.Value(tag=name, simple_value=float(value))))
            tensor = tensor_util.make_tensor_proto(np.float64(value))
            events.append(event(step, tensor_value(name + "64", tensor, metadata if step == 1 else None)))
    path = write_events(tmp_path, events)
    decoded = assert_same_as_tensorboard(path)
    for name in names:
        assert decoded.scalars[name].ordered()[2].tolist() == expected[name].astype(np.float32).astype(np.float64).tolist()
        assert decoded.scalars[name + "64"].ordered()[2].tolist() == expected[name].tolist()
        assert decoded.scalars[name].ordered()[0].tolist() == list(range(1, 61))


def text_events(tag: str, texts: list[list[str]]) -> list[event_pb2.Event]:
    """Text summaries (each event a tensor of strings), the text metadata on the first only."""
    metadata = text_metadata.create_summary_metadata(display_name=tag, description="")
    return [
        event(step, tensor_value(tag, tensor_util.make_tensor_proto(np.array(strings, dtype=object)), metadata if step == 0 else None))
        for step, strings in enumerate(texts)
    ]


def test_unicode_text_is_one_string_per_event(tmp_path: Path) -> None:
    texts = [[UNICODE_TEXT], ["first line", "ligne 2 — ü"], ["| a | b |\n|---|---|\n| 1 | 二 |"]]
    path = write_events(tmp_path, text_events("notes", texts))
    decoded = assert_same_as_tensorboard(path)
    assert decoded.texts["notes"].ordered()[2] == ["\n".join(strings) for strings in texts]
    assert "notes" not in decoded.scalars


def hparams_events(hparams: dict[str, Any], status: int) -> list[event_pb2.Event]:
    """``session_start_info`` and ``session_end_info`` as the hparams plugin writes them."""
    start = plugin_data_pb2.SessionStartInfo(start_time_secs=WALL0)
    for name, value in hparams.items():
        if isinstance(value, bool):
            start.hparams[name].bool_value = value
        elif isinstance(value, (int, float)):
            start.hparams[name].number_value = value
        else:
            start.hparams[name].string_value = value
    start_data = plugin_data_pb2.HParamsPluginData(session_start_info=start, version=hparams_metadata.PLUGIN_DATA_VERSION)
    end_data = plugin_data_pb2.HParamsPluginData(
        session_end_info=plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=WALL0 + 9),
        version=hparams_metadata.PLUGIN_DATA_VERSION,
    )
    return [
        event(0, tensor_value(tag, hparams_metadata.NULL_TENSOR, hparams_metadata.create_summary_metadata(data)))
        for tag, data in ((hparams_metadata.SESSION_START_INFO_TAG, start_data), (hparams_metadata.SESSION_END_INFO_TAG, end_data))
    ]


@pytest.mark.parametrize("status, name", [(api_pb2.STATUS_SUCCESS, "success"), (api_pb2.STATUS_FAILURE, "failure")])
def test_hparams_of_every_type_and_the_session_status(status: int, name: str, tmp_path: Path) -> None:
    hparams = {"optimizer": "sgd", "lr": 0.003, "epochs": 30, "dropout": 1e-20, "nesterov": False, "big": 2.0**60}
    path = write_events(tmp_path, hparams_events(hparams, status))
    decoded = assert_same_as_tensorboard(path)
    assert decoded.hparams == {
        "optimizer": "sgd",
        "lr": "0.003",
        "epochs": "30",
        "dropout": "1e-20",
        "nesterov": "False",
        "big": repr(2.0**60),
    }
    assert decoded.session_status == name
    assert not decoded.scalars and not decoded.texts and not decoded.summaries


def kind_events() -> list[event_pb2.Event]:
    """Images, histograms, audio and PR curves as tensors with their plugin's metadata (first
    event of a tag only), as the v2 summary ops write them."""
    png = b"\x89PNG\r\n\x1a\n" + bytes(40)
    kinds = {
        "sample": (image_metadata.create_summary_metadata("sample", ""), np.array([b"8", b"8", png], dtype=object)),
        "weights": (histogram_metadata.create_summary_metadata("weights", ""), np.array([[0.0, 1.0, 3.0], [1.0, 2.0, 5.0]])),
        "sound": (
            audio_metadata.create_summary_metadata("sound", "", audio_metadata.Encoding.Value("WAV")),
            np.array([[b"RIFF....WAVE", b""]], dtype=object),
        ),
        "pr": (pr_curve_metadata.create_summary_metadata("pr", "", 3), np.ones((6, 3), dtype=np.float32)),
    }
    return [
        event(step, tensor_value(tag, tensor_util.make_tensor_proto(array), metadata if step == 0 else None))
        for step in range(5)
        for tag, (metadata, array) in kinds.items()
    ]


def test_other_kinds_are_named_and_counted_not_read(tmp_path: Path) -> None:
    path = write_events(tmp_path, kind_events())
    decoded = assert_same_as_tensorboard(path)
    counted = {tag: (set(points.ordered()[2]), points.ordered()[0].tolist()) for tag, points in decoded.summaries.items()}
    steps = list(range(5))
    assert counted == {
        "sample": ({"images"}, steps),
        "weights": ({"histograms"}, steps),
        "sound": ({"audio"}, steps),
        "pr": ({"pr_curves"}, steps),
    }
    assert not decoded.scalars and not decoded.texts


def test_a_tag_keeps_its_plugin_from_one_read_to_the_next(tmp_path: Path) -> None:
    """Metadata comes with a tag's first event only: the image tensors of a later read (strings)
    are still images, and the text of a later read still text."""
    path = write_events(tmp_path, kind_events() + text_events("notes", [["a"], ["b"], ["c"]]))
    data = path.read_bytes()
    whole = scan_records(data)
    cut = int(whole.starts[len(whole.starts) // 2]) - 12  # a record boundary in the middle
    plugins = TagPlugins()
    first = decode_records(data[:cut], scan_records(data[:cut]), plugins=plugins)
    rest = data[cut:]
    second = decode_records(rest, scan_records(rest, cut), plugins=plugins, base=cut, first_index=first.records)
    assert first.records + second.records == whole.starts.size
    for decoded in (first, second):
        assert not decoded.scalars
        assert all(set(points.ordered()[2]) <= {"images", "histograms", "audio", "pr_curves"} for points in decoded.summaries.values())
    assert len(second.summaries["sample"]) + len(first.summaries["sample"]) == 5
    read_texts = first.texts.get("notes"), second.texts.get("notes")
    assert [value for points in read_texts if points for value in points.ordered()[2]] == ["a", "b", "c"]


def test_a_whole_file_of_every_kind_matches_tensorboard_tag_for_tag(tmp_path: Path) -> None:
    values = special_values(len(SPECIAL_STEPS))
    events = (
        scalar_events("f64", SPECIAL_STEPS, values, np.float64, True)
        + scalar_events("f32", SPECIAL_STEPS, values, np.float32, True)
        + text_events("notes", [[UNICODE_TEXT]] * 3)
        + hparams_events(HPARAMS, api_pb2.STATUS_SUCCESS)
        + kind_events()
    )
    events.sort(key=lambda item: item.wall_time)  # interleaved as a training loop writes them
    path = write_events(tmp_path, events)
    decoded = assert_same_as_tensorboard(path)
    reference = tensorboard_tags(path)
    assert set(decoded.scalars) == {"f64", "f32"}
    assert len(decoded.scalars["f64"]) == len(reference["f64"].steps) == len(SPECIAL_STEPS)
    assert decoded_points_of(path) == sum(len(events.steps) for tag, events in reference.items() if events.plugin != "hparams")


def decoded_points_of(path: Path) -> int:
    """How many points of every table the decoder finds in ``path``."""
    decoded = decode_file(path)
    return sum(len(points) for table in (decoded.scalars, decoded.texts, decoded.summaries) for points in table.values())

"""A fast TensorBoard event-file writer that needs no TensorFlow.

Event files are TFRecord files of serialized ``tensorboard.compat.proto.event_pb2.Event``
messages. Each record is framed as::

    uint64 length (little endian) | uint32 masked crc32c(length) | data | uint32 masked crc32c(data)

Scalars take a vectorized fast path (:func:`encode_scalar_events`): the protobuf bytes of a
scalar event are assembled with numpy from a per-tag template, and the crc32c of every record
is computed from per-byte lookup tables (crc32c is affine over GF(2), so the checksum of a
record is the checksum of its template XOR the contributions of the bytes that vary). The
result is byte-for-byte what ``Event.SerializeToString()`` would produce.

Scalars are written the way ``tf.summary.scalar`` (TF 2) writes them: a rank-0 ``DT_FLOAT``
tensor with the ``scalars`` plugin metadata on the first point of a tag. TensorBoard's Rust
data server (``--load_fast=true``) ignores float64 scalar tensors, so values are float32.

Steps that repeat or go back within a run and tag: the Rust data server (``--load_fast``)
then drops the points it holds at that step and later ones, so the new points replace them;
the Python loader keeps every point in file order (it purges only after a SessionLog START
event in "brain.Event:2" files), so the line doubles back. This module writes what it is
given and leaves that policy to callers.
"""

from __future__ import annotations

import functools
import io
import itertools
import math
import numbers
import operator
import os
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Union

import numpy as np
from tensorboard.compat.proto import (
    event_pb2,
    summary_pb2,
    tensor_pb2,
    tensor_shape_pb2,
    types_pb2,
)

from runhistory.core.errors import InvalidNameError, MetricValueError, RunHistoryError
from runhistory.eventlogs.records import frame_record, masked_crc32c, masked_crcs

__all__ = [
    "EventFileWriter",
    "HParamValue",
    "HParamDomain",
    "encode_event",
    "encode_scalar_events",
    "frame_record",
    "image_size",
    "masked_crc32c",
    "png_size",
]

HParamValue = Union[float, int, str, bool]
"""A hyperparameter value the HParams dashboard can show."""

HParamDomain = Union[None, Sequence[HParamValue], Any]
"""None (unknown), a list of discrete values, or a ``tensorboard.plugins.hparams.summary_v2``
``Domain`` (``Discrete``, ``RealInterval``, ``IntInterval``)."""

FILE_VERSION = "brain.Event:2"
_SCALARS_METADATA = bytes.fromhex("0a090a077363616c617273")  # plugin_data{plugin_name:"scalars"}
# TensorProto{dtype: DT_FLOAT, tensor_shape: {}, float_val: [<4 bytes>]}, value bytes last.
_SCALAR_TENSOR_HEAD = bytes.fromhex("080112002a04")
_PACK_F32 = struct.Struct("<f").pack
_PACK_F64 = struct.Struct("<d").pack
_INT64_MAX = 2**63 - 1
_FEW = 64  # below this many points, plain Python encodes scalars faster than numpy
_CHUNK = 1 << 16  # points encoded at once by numpy (about 20 MB of temporary arrays)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8"
_JPEG_EOI = b"\xff\xd9"
# Start-of-frame markers (baseline, progressive, lossless, arithmetic): they hold the size.
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_file_counter = itertools.count()
_file_counter_lock = threading.Lock()


# --------------------------------------------------------------------------- framing


def encode_event(event: event_pb2.Event) -> bytes:
    """Serialize ``event`` and frame it as a TFRecord record."""
    return frame_record(event.SerializeToString())


def _varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative int (int64 negatives as two's complement)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


# --------------------------------------------------------------------------- scalar fast path


def _as_steps(steps: Any) -> np.ndarray:
    """Validate and convert steps (whole numbers that fit in int64) to an int64 array."""
    array = np.asarray(steps).reshape(-1)
    kind = array.dtype.kind
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if kind == "i":
        return array.astype(np.int64, copy=False)
    if kind == "u" and array.max() <= _INT64_MAX:
        return array.astype(np.int64)
    if kind == "f":
        whole = np.isfinite(array) & (array == np.round(array)) & (np.abs(array) < 2.0**63)
        if np.all(whole):
            return array.astype(np.int64)
    if kind == "O":
        return np.array([_check_step(step) for step in array], dtype=np.int64)
    raise MetricValueError(f"steps must be whole numbers that fit in int64, got {array.dtype}")


def _check_step(step: Any) -> int:
    """A step as a Python int in the int64 range."""
    if isinstance(step, (bool, np.bool_)):
        raise MetricValueError(f"a step must be a whole number, got {step!r}")
    if isinstance(step, (float, np.floating)) and float(step).is_integer():
        step = int(step)
    try:
        number = operator.index(step)
    except TypeError as exc:
        raise MetricValueError(f"a step must be a whole number, got {step!r}") from exc
    if not -_INT64_MAX - 1 <= number <= _INT64_MAX:
        raise MetricValueError(f"step {number} does not fit in int64")
    return number


def _as_floats(values: Any, dtype: type, what: str) -> np.ndarray:
    """Convert real numbers to a 1-D little-endian float array of ``dtype``."""
    try:
        array = np.asarray(values)
        if array.dtype.kind == "O":
            array = array.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise MetricValueError(f"{what} must be real numbers") from exc
    if array.dtype.kind not in "biuf":
        raise MetricValueError(f"{what} must be real numbers, got {array.dtype} values")
    with np.errstate(over="ignore"):
        return array.reshape(-1).astype(np.dtype(dtype).newbyteorder("<"), copy=False)


def _check_tag(tag: Any) -> bytes:
    """Validate a tag and return its utf-8 bytes."""
    if not isinstance(tag, str) or not tag:
        raise InvalidNameError(f"a TensorBoard tag must be a non-empty string, got {tag!r}")
    return tag.encode("utf-8")


def _varint_bytes(steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Varint length (0 for step 0, which protobuf omits) and bytes (n, 10) of every step."""
    unsigned = steps.view(np.uint64)
    lengths = (unsigned > 0).astype(np.int8)
    for k in range(1, 10):
        lengths += unsigned >= np.uint64(1 << (7 * k))
    out = np.empty((unsigned.size, 10), dtype=np.uint8)
    for k in range(10):
        out[:, k] = ((unsigned >> np.uint64(7 * k)) & np.uint64(0x7F)).astype(np.uint8)
        out[:, k] |= np.where(lengths > k + 1, 0x80, 0).astype(np.uint8)
    return lengths, out


def _scalar_template(tag_field: bytes, step_len: int) -> tuple[bytes, list[int]]:
    """Serialized scalar Event (no metadata) with zeroed wall time, step and value bytes.

    Returns the bytes and the positions of the wall time (8), step (step_len) and value (4)
    bytes, in that order.
    """
    value = tag_field + b"\x42\x0a" + _SCALAR_TENSOR_HEAD + bytes(4)
    summary = _field(1, value)
    step = (b"\x10" + bytes(step_len)) if step_len else b""
    event = b"\x09" + bytes(8) + step + _field(5, summary)
    positions = list(range(1, 9)) + list(range(10, 10 + step_len))
    positions += list(range(len(event) - 4, len(event)))
    return event, positions


def _encode_group(
    tag_field: bytes,
    step_len: int,
    walls: np.ndarray,
    step_bytes: np.ndarray,
    values: np.ndarray,
) -> np.ndarray:
    """Framed records of scalar events that share a layout, as an (n, record) uint8 array."""
    template, positions = _scalar_template(tag_field, step_len)
    count = walls.size
    variable = np.empty((count, 12 + step_len), dtype=np.uint8)
    variable[:, :8] = walls.view(np.uint8).reshape(count, 8)
    variable[:, 8 : 8 + step_len] = step_bytes[:, :step_len]
    variable[:, 8 + step_len :] = values.view(np.uint8).reshape(count, 4)
    header = struct.pack("<Q", len(template))
    header += struct.pack("<I", masked_crc32c(header))
    rows = np.empty((count, len(header) + len(template) + 4), dtype=np.uint8)
    rows[:, : len(header) + len(template)] = np.frombuffer(header + template, dtype=np.uint8)
    rows[:, [len(header) + p for p in positions]] = variable
    crcs = masked_crcs(template, positions, variable).astype("<u4")
    rows[:, -4:] = crcs.view(np.uint8).reshape(count, 4)
    return rows


@functools.lru_cache(maxsize=4096)
def _scalar_tail(tag_field: bytes) -> bytes:
    """The bytes of a scalar event (no metadata) from the summary field up to the value."""
    value_part = tag_field + b"\x42\x0a" + _SCALAR_TENSOR_HEAD
    summary = b"\x0a" + _varint(len(value_part) + 4) + value_part + bytes(4)
    return _field(5, summary)[:-4]


def _frame_scalar(tail: bytes, step: int, wall: bytes, value: bytes) -> bytes:
    """One framed scalar event from its per-tag tail and packed wall time and value."""
    step_part = b"\x10" + _varint(step) if step else b""
    return frame_record(b"\x09" + wall + step_part + tail + value)


def _pack_float32(value: float) -> bytes:
    """Little-endian float32 bytes; out-of-range values become infinities, as numpy does."""
    try:
        return _PACK_F32(value)
    except OverflowError:
        return _PACK_F32(math.copysign(math.inf, value))


def _encode_few_scalars(
    tag_field: bytes, steps: np.ndarray, values: np.ndarray, walls: np.ndarray
) -> bytes:
    """Framed scalar events without metadata, one by one: faster than numpy for a few points."""
    tail = _scalar_tail(tag_field)
    wall_bytes, value_bytes = walls.tobytes(), values.tobytes()
    return b"".join(
        _frame_scalar(tail, step, wall_bytes[8 * i : 8 * i + 8], value_bytes[4 * i : 4 * i + 4])
        for i, step in enumerate(steps.tolist())
    )


def _scalar_event(tag: str, step: int, value: float, wall_time: float, metadata: bool) -> bytes:
    """One framed scalar event built with the protobuf classes."""
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(),
        float_val=[value],
    )
    summary_value = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
    if metadata:
        summary_value.metadata.ParseFromString(_SCALARS_METADATA)
    event = event_pb2.Event(
        wall_time=wall_time, step=step, summary=summary_pb2.Summary(value=[summary_value])
    )
    return encode_event(event)


def _assemble(groups: list[tuple[np.ndarray, np.ndarray]], total: int) -> bytes:
    """Concatenate per-group record rows back into input order.

    ``groups`` holds (indices, rows) pairs; indices are positions in the input.
    """
    groups.sort(key=lambda group: int(group[0][0]))
    if all(int(idx[-1]) - int(idx[0]) + 1 == idx.size for idx, _ in groups):
        return b"".join(rows.tobytes() for _, rows in groups)
    sizes = np.zeros(total, dtype=np.int64)
    for idx, rows in groups:
        sizes[idx] = rows.shape[1]
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    out = np.empty(int(sizes.sum()), dtype=np.uint8)
    for idx, rows in groups:
        out[starts[idx][:, None] + np.arange(rows.shape[1])] = rows
    return out.tobytes()


def encode_scalar_events(
    tag: str,
    steps: Sequence[int] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    wall_times: Sequence[float] | np.ndarray | float | None = None,
    *,
    with_metadata: bool = True,
) -> bytes:
    """Framed TFRecord bytes of one scalar event per point of a series, in input order.

    ``values`` are stored as float32, ``wall_times`` (seconds since the epoch; one number for
    all points, or None for now) as float64. ``with_metadata`` puts the ``scalars`` plugin
    metadata on the first point, which TensorBoard needs once per tag and file.
    """
    tag_bytes = _check_tag(tag)
    step_array = _as_steps(steps)
    value_array = _as_floats(values, np.float32, "scalar values")
    count = step_array.size
    if wall_times is None or np.ndim(wall_times) == 0:
        now = time.time() if wall_times is None else wall_times
        wall_array = np.full(count, now, dtype="<f8")
    else:
        wall_array = _as_floats(wall_times, np.float64, "wall times")
    if not value_array.size == wall_array.size == count:
        raise ValueError(
            f"steps, values and wall_times differ in length: "
            f"{count}, {value_array.size}, {wall_array.size}"
        )
    if count == 0:
        return b""
    head = b""
    if with_metadata:
        head = _scalar_event(
            tag, int(step_array[0]), float(value_array[0]), float(wall_array[0]), True
        )
        step_array, value_array, wall_array = step_array[1:], value_array[1:], wall_array[1:]
    return head + _encode_plain_scalars(_field(1, tag_bytes), step_array, value_array, wall_array)


def _encode_plain_scalars(
    tag_field: bytes, steps: np.ndarray, values: np.ndarray, walls: np.ndarray
) -> bytes:
    """Framed scalar events without metadata, in chunks that bound the memory used."""
    if steps.size < _FEW:
        return _encode_few_scalars(tag_field, steps, values, walls)
    return b"".join(
        _encode_chunk(tag_field, steps[i : i + _CHUNK], values[i : i + _CHUNK], walls[i : i + _CHUNK])
        for i in range(0, steps.size, _CHUNK)
    )


def _encode_chunk(
    tag_field: bytes, steps: np.ndarray, values: np.ndarray, walls: np.ndarray
) -> bytes:
    """Framed scalar events without metadata, grouped by the varint length of their step."""
    lengths, step_bytes = _varint_bytes(steps)
    groups = []
    for step_len in np.unique(lengths):
        idx = np.flatnonzero(lengths == step_len)
        rows = _encode_group(
            tag_field, int(step_len), walls[idx], step_bytes[idx], values[idx]
        )
        groups.append((idx, rows))
    return _assemble(groups, steps.size)


# --------------------------------------------------------------------------- other summaries


def _string_tensor(strings: Sequence[bytes], shape: Sequence[int]) -> tensor_pb2.TensorProto:
    """A DT_STRING tensor."""
    dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in shape]
    return tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=dims),
        string_val=list(strings),
    )


def _utf8(text: str) -> bytes:
    """UTF-8 bytes of text; a lone surrogate (which UTF-8 cannot hold) shows as its escape."""
    return text.encode("utf-8", "backslashreplace")


def _text_tensor(text: str | Sequence[str] | Sequence[Sequence[str]]) -> tensor_pb2.TensorProto:
    """A string tensor of rank 0, 1 or 2 holding ``text``."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8")
    if isinstance(text, str):
        return _string_tensor([_utf8(text)], [])
    rows = list(text)
    if all(isinstance(row, str) for row in rows):
        return _string_tensor([_utf8(row) for row in rows], [len(rows)])
    table = [[str(cell) for cell in row] for row in rows]
    widths = {len(row) for row in table}
    if len(widths) > 1:
        raise MetricValueError("a text table must have the same number of cells in every row")
    flat = [_utf8(cell) for row in table for cell in row]
    return _string_tensor(flat, [len(table), widths.pop() if widths else 0])


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) read from the IHDR chunk of PNG ``data``."""
    if len(data) < 24 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise MetricValueError("image data is not a PNG; pass width and height")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a whole PNG or JPEG image, the formats TensorBoard shows.

    Checks the framing TensorBoard's browser view depends on: every PNG chunk with its
    checksum up to IEND, or the JPEG segments up to the frame header and an end marker.
    Raises MetricValueError for anything else (other formats, truncated or corrupt files).
    """
    data = bytes(data)
    if data.startswith(_PNG_SIGNATURE):
        return _checked_png_size(data)
    if data.startswith(_JPEG_SOI):
        return _checked_jpeg_size(data)
    raise MetricValueError("the image is neither a PNG nor a JPEG file")


def _checked_png_size(data: bytes) -> tuple[int, int]:
    """The size in the IHDR chunk, once every chunk up to IEND is whole and its CRC right."""
    position = len(_PNG_SIGNATURE)
    size: tuple[int, int] | None = None
    while position + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, position)
        kind = data[position + 4 : position + 8]
        end = position + 12 + length
        if end > len(data):
            break
        (crc,) = struct.unpack_from(">I", data, end - 4)
        if zlib.crc32(data[position + 4 : end - 4]) != crc:
            raise MetricValueError(f"the PNG image is corrupt (bad checksum of its {kind!r} chunk)")
        if size is None:
            if kind != b"IHDR" or length != 13:
                raise MetricValueError("the PNG image is corrupt (it does not start with its header)")
            size = struct.unpack_from(">II", data, position + 8)
        if kind == b"IEND":
            if not size[0] or not size[1]:
                raise MetricValueError("the PNG image is corrupt (it has no pixels)")
            return size
        position = end
    raise MetricValueError("the PNG image is truncated (it ends before its IEND chunk)")


def _checked_jpeg_size(data: bytes) -> tuple[int, int]:
    """The size in the frame header, once the segments before it and an end marker are there."""
    position = len(_JPEG_SOI)
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            break
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            position += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            break
        (length,) = struct.unpack_from(">H", data, position + 2)
        if length < 2 or position + 2 + length > len(data):
            break
        if marker in _JPEG_SOF:
            if length < 8:
                break
            height, width = struct.unpack_from(">HH", data, position + 5)
            if not width or not height:
                break
            if data.rfind(_JPEG_EOI) < position + 2 + length:
                raise MetricValueError("the JPEG image is truncated (it has no end marker)")
            return width, height
        position += 2 + length
    raise MetricValueError("the JPEG image is corrupt (no readable frame header)")


def _histogram_buckets(values: Any, buckets: int) -> np.ndarray:
    """(buckets, 3) array of left edge, right edge, count — the layout of histogram_pb."""
    data = _as_floats(values, np.float64, "histogram values")
    data = data[np.isfinite(data)]
    if buckets <= 0:
        raise ValueError(f"buckets must be positive, got {buckets}")
    if data.size == 0:
        return np.zeros((buckets, 3))
    low, high = float(data.min()), float(data.max())
    if high == low:
        counts = np.zeros(buckets)
        counts[-1] = data.size
        return np.stack([np.full(buckets, low), np.full(buckets, low), counts], axis=1)
    width = (high - low) / buckets
    index = np.minimum(np.floor((data - low) / width).astype(np.int64), buckets - 1)
    counts = np.bincount(index, minlength=buckets).astype(np.float64)
    edges = np.linspace(low, high, buckets + 1)
    return np.stack([edges[:-1], edges[1:], counts], axis=1)


def _double_tensor(array: np.ndarray) -> tensor_pb2.TensorProto:
    """A DT_DOUBLE tensor holding ``array``."""
    dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in array.shape]
    return tensor_pb2.TensorProto(
        dtype=types_pb2.DT_DOUBLE,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=dims),
        tensor_content=np.ascontiguousarray(array, dtype="<f8").tobytes(),
    )


def _plugin_metadata(plugin_name: str, content: bytes = b"") -> summary_pb2.SummaryMetadata:
    """SummaryMetadata naming the plugin that owns a tag."""
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=plugin_name, content=content
        )
    )


def _hparam_domain_info(name: str, domain: HParamDomain) -> Any:  # api_pb2.HParamInfo
    """api_pb2.HParamInfo for a hyperparameter name and domain."""
    from tensorboard.plugins.hparams import api_pb2, summary_v2

    info = api_pb2.HParamInfo(name=name)
    if domain is None:
        return info
    if isinstance(domain, summary_v2.Domain):
        domain.update_hparam_info(info)
        return info
    if isinstance(domain, (str, bytes)) or not isinstance(domain, Iterable):
        raise MetricValueError(f"hparam {name!r}: a domain is a list of values or a Domain")
    values = list(domain)
    if not values:
        return info
    summary_v2.Discrete(values).update_hparam_info(info)
    return info


def _metric_info(metric: str | tuple[str, str]) -> Any:
    """api_pb2.MetricInfo for a tag, or a (group, tag) pair (group: sub-folder of a session)."""
    from tensorboard.plugins.hparams import api_pb2

    group, tag = ("", metric) if isinstance(metric, str) else metric
    _check_tag(tag)
    return api_pb2.MetricInfo(name=api_pb2.MetricName(group=group, tag=tag))


def _hparams_summary(tag: str, plugin_data: Any) -> summary_pb2.Summary:
    """A Summary holding HParams plugin data (as summary_v2 builds it)."""
    from tensorboard.plugins.hparams import metadata

    summary = summary_pb2.Summary()
    summary.value.add(
        tag=tag,
        metadata=metadata.create_summary_metadata(plugin_data),
        tensor=tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT,
            tensor_shape=tensor_shape_pb2.TensorShapeProto(
                dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=0)]
            ),
        ),
    )
    return summary


# --------------------------------------------------------------------------- writer


def _event_file_name(suffix: str) -> str:
    """A new event file name: ``events.out.tfevents.<time>.<host>.<pid>.<counter><suffix>``."""
    with _file_counter_lock:
        counter = next(_file_counter)
    host = socket.gethostname().replace("/", "_") or "localhost"
    return f"events.out.tfevents.{int(time.time())}.{host}.{os.getpid()}.{counter}{suffix}"


class EventFileWriter:
    """Writes one new TensorBoard event file in ``logdir``; events are buffered in memory.

    The file is ``logdir/events.out.tfevents.<time>.<hostname>.<pid>.<counter><suffix>`` and
    starts with the ``file_version: "brain.Event:2"`` event. Bytes are written in blocks of
    ``buffer_bytes`` or on :meth:`flush`/:meth:`close`. Thread-safe. Write each tag's steps
    in increasing order: when a step repeats or goes back, TensorBoard's Rust data server
    drops the points it holds at that step and after (see the module docstring).
    """

    def __init__(
        self,
        logdir: str | os.PathLike[str],
        filename_suffix: str = "",
        *,
        buffer_bytes: int = 1 << 22,
    ) -> None:
        """Create ``logdir`` if needed and the event file in it."""
        if "/" in filename_suffix or os.sep in filename_suffix:
            raise InvalidNameError(
                f"filename_suffix must not contain a path separator: {filename_suffix!r}"
            )
        self._logdir = Path(logdir)
        self._logdir.mkdir(parents=True, exist_ok=True)
        self._path = self._logdir / _event_file_name(filename_suffix)
        self._file: io.BufferedWriter | None = open(self._path, "xb")  # noqa: SIM115
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._buffer_bytes = buffer_bytes
        self._lock = threading.Lock()
        self._tags_with_metadata: set[str] = set()
        self.add_event(event_pb2.Event(wall_time=time.time(), file_version=FILE_VERSION))
        self.flush()

    @property
    def path(self) -> Path:
        """The event file being written."""
        return self._path

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._file is None

    def __enter__(self) -> EventFileWriter:
        """Return self."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the writer."""
        self.close()

    def _write(self, data: bytes) -> None:
        """Append framed records to the buffer; write the buffer out when it is large."""
        if not data:
            return
        with self._lock:
            if self._file is None:
                raise RunHistoryError(f"event file {self._path} is closed")
            self._buffer.append(data)
            self._buffered += len(data)
            if self._buffered >= self._buffer_bytes:
                self._drain()

    def _drain(self) -> None:
        """Write buffered bytes to the file (lock held)."""
        if self._buffer and self._file is not None:
            self._file.write(b"".join(self._buffer))
            self._buffer.clear()
            self._buffered = 0

    def _first_use(self, tag: str) -> bool:
        """True the first time ``tag`` is written to this file."""
        with self._lock:
            if tag in self._tags_with_metadata:
                return False
            self._tags_with_metadata.add(tag)
            return True

    def add_event(self, event: event_pb2.Event) -> None:
        """Append any Event proto."""
        self._write(encode_event(event))

    def add_summary(
        self,
        summary: summary_pb2.Summary,
        step: int,
        wall_time: float | None = None,
    ) -> None:
        """Append a Summary proto as an event at ``step``."""
        wall = time.time() if wall_time is None else float(wall_time)
        event = event_pb2.Event(wall_time=wall, step=_check_step(step), summary=summary)
        self.add_event(event)

    def _add_value(
        self,
        tag: str,
        tensor: tensor_pb2.TensorProto,
        plugin_metadata: summary_pb2.SummaryMetadata,
        step: int,
        wall_time: float | None,
    ) -> None:
        """Append one tensor summary value, with its plugin metadata the first time."""
        _check_tag(tag)
        value = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
        if self._first_use(tag):
            value.metadata.CopyFrom(plugin_metadata)
        self.add_summary(summary_pb2.Summary(value=[value]), step, wall_time)

    def add_scalars(
        self,
        tag: str,
        steps: Sequence[int] | np.ndarray,
        values: Sequence[float] | np.ndarray,
        wall_times: Sequence[float] | np.ndarray | float | None = None,
    ) -> None:
        """Append a whole scalar series (float32 values) in one vectorized call."""
        _check_tag(tag)
        with self._lock:
            first = tag not in self._tags_with_metadata
        data = encode_scalar_events(tag, steps, values, wall_times, with_metadata=first)
        if data and first:
            self._first_use(tag)
        self._write(data)

    def add_scalar(
        self, tag: str, value: float, step: int, wall_time: float | None = None
    ) -> None:
        """Append one scalar point (stored as float32)."""
        if not isinstance(value, numbers.Real):
            raise MetricValueError(f"scalar {tag!r} must be a number, got {type(value).__name__}")
        step = _check_step(step)
        wall = time.time() if wall_time is None else float(wall_time)
        with self._lock:
            known = tag in self._tags_with_metadata
        if not known:
            self.add_scalars(tag, [step], [value], [wall])
            return
        tail = _scalar_tail(_field(1, _check_tag(tag)))
        self._write(_frame_scalar(tail, step, _PACK_F64(wall), _pack_float32(float(value))))

    def add_text(
        self,
        tag: str,
        text: str | Sequence[str] | Sequence[Sequence[str]],
        step: int,
        wall_time: float | None = None,
    ) -> None:
        """Append text (markdown) or a table: a 2-D list of strings renders as an HTML table."""
        from tensorboard.plugins.text import metadata

        self._add_value(
            tag, _text_tensor(text), metadata.create_summary_metadata("", ""), step, wall_time
        )

    def add_image(
        self,
        tag: str,
        png: bytes,
        step: int,
        wall_time: float | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> None:
        """Append an encoded image: PNG or JPEG bytes (checked, size read from them), or any
        format TensorBoard's browser shows when ``width`` and ``height`` are given."""
        from tensorboard.plugins.image import metadata

        if width is None or height is None:
            width, height = image_size(png)
        tensor = _string_tensor([str(width).encode(), str(height).encode(), bytes(png)], [3])
        self._add_value(tag, tensor, metadata.create_summary_metadata("", ""), step, wall_time)

    def add_histogram(
        self,
        tag: str,
        values: Sequence[float] | np.ndarray,
        step: int,
        wall_time: float | None = None,
        buckets: int = 30,
    ) -> None:
        """Append a histogram of ``values`` (non-finite values are left out)."""
        tensor = _double_tensor(_histogram_buckets(values, buckets))
        self._add_value(tag, tensor, _plugin_metadata("histograms"), step, wall_time)

    def add_hparams_session(
        self,
        hparams: Mapping[str, HParamValue],
        group_name: str | None = None,
        start_time: float | None = None,
        end_time: float | None = None,
        status: str | None = "success",
    ) -> None:
        """Mark this file's run as one HParams session with these hyperparameter values.

        Writes ``session_start_info`` and, unless ``status`` is None, ``session_end_info``
        (``status`` one of "success", "failure", "running", "unknown"). Sessions with the
        same ``group_name`` are one group (default: a hash of the values, as summary_v2
        does). The metrics shown are the run's scalar tags, or those listed by
        :meth:`add_hparams_experiment` in a parent folder.
        """
        from tensorboard.plugins.hparams import metadata, plugin_data_pb2, summary_v2

        clean = {}
        for name, value in hparams.items():
            if isinstance(value, np.generic):
                value = value.item()
            if not isinstance(value, (bool, int, float, str)):
                raise MetricValueError(f"hparam {name!r} is a {type(value).__name__}")
            clean[name] = value
        start = time.time() if start_time is None else float(start_time)
        summary = summary_v2.hparams_pb(clean, trial_id=group_name, start_time_secs=start)
        self.add_summary(summary, 0, start)
        if status is None:
            return
        end = time.time() if end_time is None else float(end_time)
        end_info = plugin_data_pb2.SessionEndInfo(
            status=_session_status(status), end_time_secs=end
        )
        data = plugin_data_pb2.HParamsPluginData(session_end_info=end_info)
        self.add_summary(_hparams_summary(metadata.SESSION_END_INFO_TAG, data), 0, end)

    def add_hparams_experiment(
        self,
        hparams: Mapping[str, HParamDomain] | Sequence[str],
        metric_tags: Sequence[str | tuple[str, str]],
        time_created: float | None = None,
    ) -> None:
        """Describe an HParams experiment: the hyperparameters and metrics of its sessions.

        Write it in the folder above the session runs (the dashboard uses the first
        experiment summary it finds and then lists every session run below). ``hparams`` maps
        names to domains (None, a list of values, or a summary_v2 Domain) or is a list of
        names. A metric is a scalar tag of the session run, or (sub-folder, tag).
        """
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

        domains = hparams if isinstance(hparams, Mapping) else {name: None for name in hparams}
        created = time.time() if time_created is None else float(time_created)
        experiment = api_pb2.Experiment(
            hparam_infos=[_hparam_domain_info(name, domain) for name, domain in domains.items()],
            metric_infos=[_metric_info(metric) for metric in metric_tags],
            time_created_secs=created,
        )
        data = plugin_data_pb2.HParamsPluginData(experiment=experiment)
        self.add_summary(_hparams_summary(metadata.EXPERIMENT_TAG, data), 0, created)

    def flush(self) -> None:
        """Write buffered events to the file (visible to TensorBoard)."""
        with self._lock:
            self._drain()
            if self._file is not None:
                self._file.flush()

    def close(self) -> None:
        """Flush and close the file; closing twice is harmless."""
        with self._lock:
            if self._file is None:
                return
            self._drain()
            self._file.close()
            self._file = None


def _session_status(status: str) -> int:
    """api_pb2.Status value for a status name."""
    from tensorboard.plugins.hparams import api_pb2

    names = {
        "success": api_pb2.STATUS_SUCCESS,
        "failure": api_pb2.STATUS_FAILURE,
        "running": api_pb2.STATUS_RUNNING,
        "unknown": api_pb2.STATUS_UNKNOWN,
    }
    if status not in names:
        raise ValueError(f"status must be one of {sorted(names)}, got {status!r}")
    return names[status]

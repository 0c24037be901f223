"""The records of an event file as run history: scalars, text, hparams, and what stays in the file.

:func:`decode_records` turns the records :func:`~runhistory.eventlogs.records.scan_records`
found into :class:`DecodedEvents`. What becomes what:

- a scalar (``simple_value``, or a rank-0 numeric tensor as ``tf.summary.scalar`` v2 writes it,
  float32, float64 or any numeric dtype): a point of the tag's series (step, wall time, value);
- text (the ``text`` plugin's string tensors): a string point (a tensor of several strings is
  one point, its strings joined by new lines);
- hparams (``session_start_info``): the session's hyperparameters, as text, and the status its
  ``session_end_info`` gives;
- anything else (images, histograms, audio, PR curves, graphs, other plugins' tensors): one
  point per event naming its kind (the plugin's name); the payload stays in the file.

Speed: most records of a long run are scalars that differ from the tag's previous record only
in wall time, step and value. Records of one length are compared with numpy against a template
(the first of them, laid out by :func:`scalar_layout`): those that match are decoded, and their
payload checksums checked, all at once (see :func:`~runhistory.eventlogs.records.masked_crcs`).
The others go through TensorBoard's protos one by one. A record whose checksum fails or that
does not parse is counted as corrupt and skipped.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from google.protobuf.message import DecodeError
from tensorboard.compat.proto import event_pb2, summary_pb2, types_pb2

from runhistory.eventlogs.records import FOOTER_BYTES, RecordScan, masked_crc32c, masked_crcs

__all__ = ["DecodedEvents", "TagPoints", "decode_records", "scalar_layout"]

SCALARS_PLUGIN, TEXT_PLUGIN, HPARAMS_PLUGIN = "scalars", "text", "hparams"
FAST_MIN_RECORDS = 32  # fewer records of one length go through the protos
FAST_MAX_RECORD_BYTES = 1024  # scalar records are small; larger ones (images, audio) go through the protos
MAX_TEMPLATES_PER_LENGTH = 64
_SESSION_STATUS = {0: "unknown", 1: "success", 2: "failure", 3: "running"}
_KIND_OF_VALUE = {"image": "images", "histo": "histograms", "audio": "audio", "tensor": "tensor"}
_FLOAT_DTYPES = {types_pb2.DT_FLOAT: ("<f4", 4), types_pb2.DT_DOUBLE: ("<f8", 8)}


class TagPoints:
    """Points of one tag: chunks decoded together (arrays) and points decoded one by one."""

    def __init__(self) -> None:
        self._chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._indexes: list[int] = []  # record index of each single point (it orders the points)
        self._steps: list[int] = []
        self._times: list[float] = []
        self._values: list[Any] = []

    def add_arrays(self, indexes: np.ndarray, steps: np.ndarray, times: np.ndarray, values: np.ndarray) -> None:
        """Add points decoded together (float64 values)."""
        self._chunks.append((indexes, steps, times, values))

    def add(self, index: int, step: int, time: float, value: Any) -> None:
        """Add one point."""
        self._indexes.append(index)
        self._steps.append(step)
        self._times.append(time)
        self._values.append(value)

    def __len__(self) -> int:
        return sum(chunk[0].size for chunk in self._chunks) + len(self._indexes)

    def ordered(self) -> tuple[np.ndarray, np.ndarray, Any]:
        """Steps (int64), times (float64) and values in file order: values a float64 array when
        all are numbers, else a list."""
        chunks = list(self._chunks)
        numeric = all(isinstance(value, float) for value in self._values)
        if self._indexes:
            values = np.array(self._values, dtype=np.float64 if numeric else object)
            chunks.append((np.array(self._indexes, dtype=np.int64), np.array(self._steps, dtype=np.int64), np.array(self._times), values))
        if not numeric:
            chunks = [(i, s, t, v.astype(object)) for i, s, t, v in chunks]
        indexes, steps, times, values = (np.concatenate(part) for part in zip(*chunks))
        if len(chunks) > 1 and np.any(np.diff(indexes) < 0):
            order = np.argsort(indexes, kind="stable")
            steps, times, values = steps[order], times[order], values[order]
        return steps, times, values if numeric else values.tolist()


@dataclass
class DecodedEvents:
    """What the records of one read of an event file hold, by tag."""

    scalars: dict[str, TagPoints] = field(default_factory=dict)
    texts: dict[str, TagPoints] = field(default_factory=dict)
    summaries: dict[str, TagPoints] = field(default_factory=dict)  # values: the plugin's name
    hparams: dict[str, str] = field(default_factory=dict)
    session_status: str | None = None
    corrupt: list[int] = field(default_factory=list)  # file offsets of records skipped
    records: int = 0


# --------------------------------------------------------------------------- the fast path


@dataclass(frozen=True)
class ScalarLayout:
    """Where a scalar event's variable parts sit in its bytes (its other bytes are its tag's template)."""

    tag: str
    wall: int  # offset of the float64 wall time
    step: int  # offset of the step's varint (-1: no step field, step 0)
    step_bytes: int
    value: int  # offset of the value
    value_dtype: str  # "<f4" or "<f8"

    def positions(self) -> np.ndarray:
        """Offsets of every variable byte."""
        spans = [range(self.wall, self.wall + 8), range(self.value, self.value + int(self.value_dtype[-1]))]
        if self.step >= 0:
            spans.append(range(self.step, self.step + self.step_bytes))
        return np.array(sorted(p for span in spans for p in span), dtype=np.int64)


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data):
            raise IndexError("varint past the end")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if byte < 0x80:
            return value, at
        shift += 7
        if shift > 63:
            raise IndexError("varint too long")


def _fields(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """``(number, wire type, value start, value end)`` of each field of a message in ``data[start:end]``."""
    found = []
    at = start
    while at < end:
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, after = _varint(data, at)
        elif wire == 1:
            after = at + 8
        elif wire == 5:
            after = at + 4
        elif wire == 2:
            length, at = _varint(data, at)
            after = at + length
        else:
            raise IndexError("group wire type")
        if after > end:
            raise IndexError("field past the end")
        found.append((number, wire, at, after))
        at = after
    return found


def scalar_layout(record: bytes) -> ScalarLayout | None:
    """The layout of ``record`` when it is one plain scalar event (one value, a float32 or float64
    simple value or rank-0 tensor, metadata only of the scalars plugin); else None."""
    try:
        return _scalar_layout(record)
    except (IndexError, UnicodeDecodeError):
        return None


def _message(record: bytes, start: int, end: int) -> dict[int, tuple[int, int, int]]:
    """``{number: (wire type, value start, value end)}`` of a message whose fields each occur once."""
    fields = _fields(record, start, end)
    found = {number: (wire, value_start, value_end) for number, wire, value_start, value_end in fields}
    if len(found) != len(fields):
        raise IndexError("a repeated field")
    return found


def _scalar_layout(record: bytes) -> ScalarLayout | None:
    event = _message(record, 0, len(record))
    if set(event) - {1, 2, 5} or event.get(1, (None,))[0] != 1 or 5 not in event:
        return None
    step, step_bytes = -1, 0
    if 2 in event:
        step, step_end = event[2][1], event[2][2]
        step_bytes = step_end - step
    summary = _fields(record, event[5][1], event[5][2])
    if len(summary) != 1 or summary[0][:2] != (1, 2):
        return None
    value = _message(record, summary[0][2], summary[0][3])
    if set(value) - {1, 2, 8, 9} or 1 not in value:
        return None
    if 9 in value and _plugin_name(record[value[9][1] : value[9][2]]) not in ("", SCALARS_PLUGIN):
        return None
    tag = record[value[1][1] : value[1][2]].decode("utf-8")
    if 2 in value and value[2][0] == 5 and 8 not in value:
        return ScalarLayout(tag, event[1][1], step, step_bytes, value[2][1], "<f4")
    if 8 in value and 2 not in value:
        found = _tensor_value(record, value[8][1], value[8][2])
        if found is not None:
            return ScalarLayout(tag, event[1][1], step, step_bytes, *found)
    return None


def _plugin_name(metadata: bytes) -> str:
    try:
        return summary_pb2.SummaryMetadata.FromString(metadata).plugin_data.plugin_name
    except DecodeError:
        return "?"


def _tensor_value(record: bytes, start: int, end: int) -> tuple[int, str] | None:
    """Offset and dtype of the one float of a rank-0 float32/float64 tensor, else None."""
    tensor = _message(record, start, end)
    if 1 not in tensor or tensor[1][0] != 0:
        return None
    dtype, _ = _varint(record, tensor[1][1])
    if dtype not in _FLOAT_DTYPES or (2 in tensor and tensor[2][2] != tensor[2][1]):
        return None  # another dtype, or a shape with dimensions
    numpy_dtype, width = _FLOAT_DTYPES[dtype]
    rest = set(tensor) - {1, 2}
    content_field = {types_pb2.DT_FLOAT: 5, types_pb2.DT_DOUBLE: 6}[dtype]
    for number in (content_field, 4):  # float_val/double_val, or tensor_content
        if rest == {number} and tensor[number][2] - tensor[number][1] == width:
            return tensor[number][1], numpy_dtype
    return None


def _decode_fast(
    buffer: np.ndarray, scan: RecordScan, decoded: DecodedEvents, base_index: int, rest: np.ndarray, base: int
) -> None:
    """Decode, in place of the protos, every group of template-matching scalar records; marks
    them done in ``rest`` (a bool per record: still to decode)."""
    lengths = scan.lengths
    values, counts = np.unique(lengths, return_counts=True)
    for length in values[(counts >= FAST_MIN_RECORDS) & (values <= FAST_MAX_RECORD_BYTES)]:
        rows = np.flatnonzero(lengths == length)
        # Rows of a strided view of the buffer: a copy of n x length bytes, no index array that size.
        block = sliding_window_view(buffer, int(length))[scan.starts[rows]]
        stored = sliding_window_view(buffer, FOOTER_BYTES)[scan.starts[rows] + length].view("<u4").ravel()
        templates = _Templates(block)
        pending = np.arange(rows.size)
        for _ in range(MAX_TEMPLATES_PER_LENGTH):
            if pending.size < FAST_MIN_RECORDS:
                break
            layout = scalar_layout(block[pending[0]].tobytes())
            if layout is None:
                pending = pending[1:]
                continue
            matched = templates.matching(pending, layout)
            _take_scalars(block, stored, pending[matched], rows, layout, decoded, base_index, scan, base)
            rest[rows[pending[matched]]] = False
            pending = pending[~matched]


class _Templates:
    """The records of one length, compared with a template once their variable bytes are zeroed:
    by a 64-bit hash of each zeroed row first, then byte for byte where the hashes agree. The
    hashes are kept per layout (tags of one length share it)."""

    def __init__(self, block: np.ndarray) -> None:
        self._block = block
        self._zeroed: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}

    def matching(self, pending: np.ndarray, layout: ScalarLayout) -> np.ndarray:
        """Which of the ``pending`` rows have the template's (``pending[0]``'s) bytes everywhere
        but the layout's variable parts, and a step varint of the template's length."""
        whole, hashes = self._zeroed_rows(layout.positions())
        template = pending[0]
        matched = hashes[pending] == hashes[template]
        alike = pending[matched]
        matched[matched] = whole[alike] == whole[template]  # a hash collision is not a match
        if layout.step >= 0:
            varint = self._block[pending, layout.step : layout.step + layout.step_bytes]
            matched &= np.all(varint[:, :-1] >= 0x80, axis=1) & (varint[:, -1] < 0x80)
        return matched

    def _zeroed_rows(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = tuple(positions.tolist())
        found = self._zeroed.get(key)
        if found is None:
            count, length = self._block.shape
            padded = np.zeros((count, -(-length // 8) * 8), dtype=np.uint8)
            padded[:, :length] = self._block
            padded[:, positions] = 0
            words = padded.view("<u8")
            hashes = words[:, 0].copy()
            for column in range(1, words.shape[1]):
                hashes = hashes * np.uint64(0x100000001B3) ^ words[:, column]
            found = self._zeroed[key] = (padded.view(f"V{padded.shape[1]}").ravel(), hashes)
        return found


def _take_scalars(
    block: np.ndarray,
    stored_crcs: np.ndarray,
    picked: np.ndarray,
    rows: np.ndarray,
    layout: ScalarLayout,
    decoded: DecodedEvents,
    base_index: int,
    scan: RecordScan,
    base: int,
) -> None:
    records = block[picked]
    positions = layout.positions()
    template = records[0].copy()
    template[positions] = 0
    good = masked_crcs(template.tobytes(), positions.tolist(), records[:, positions]) == stored_crcs[picked]
    if not np.all(good):
        decoded.corrupt.extend((base + scan.starts[rows[picked[~good]]] - 12).tolist())
        records, picked = records[good], picked[good]
    if not picked.size:
        return
    times = np.ascontiguousarray(records[:, layout.wall : layout.wall + 8]).view("<f8").ravel()
    width = int(layout.value_dtype[-1])
    values = np.ascontiguousarray(records[:, layout.value : layout.value + width]).view(layout.value_dtype).ravel()
    steps = _varint_column(records, layout) if layout.step >= 0 else np.zeros(picked.size, dtype=np.int64)
    points = decoded.scalars.setdefault(layout.tag, TagPoints())
    points.add_arrays(base_index + rows[picked], steps, times.astype(np.float64), values.astype(np.float64))


def _varint_column(records: np.ndarray, layout: ScalarLayout) -> np.ndarray:
    step = np.zeros(records.shape[0], dtype=np.uint64)
    for i in range(layout.step_bytes):
        byte = (records[:, layout.step + i] & 0x7F).astype(np.uint64)
        step |= byte << np.uint64(7 * i)
    return step.view(np.int64)


# --------------------------------------------------------------------------- the protos


@dataclass
class TagPlugins:
    """The plugin of each tag, from its first event with metadata (TensorBoard writes it once)."""

    of_tag: dict[str, str] = field(default_factory=dict)


def decode_records(data: bytes, scan: RecordScan, *, plugins: TagPlugins, base: int = 0, first_index: int = 0) -> DecodedEvents:
    """What the records of ``scan`` (found in ``data``, read from file offset ``base``) hold.

    ``plugins`` carries each tag's plugin from one read of the file to the next; ``first_index``
    numbers this read's records after the previous ones (it orders points only).
    """
    decoded = DecodedEvents(records=int(scan.starts.size))
    if not scan.starts.size:
        return decoded
    buffer = np.frombuffer(data, dtype=np.uint8)
    rest = np.ones(scan.starts.size, dtype=bool)
    _decode_fast(buffer, scan, decoded, first_index, rest, base)
    view = memoryview(data)
    for row in np.flatnonzero(rest).tolist():
        start, length = int(scan.starts[row]), int(scan.lengths[row])
        payload = view[start : start + length]
        (stored,) = struct.unpack_from("<I", data, start + length)
        if masked_crc32c(payload) != stored:
            decoded.corrupt.append(base + start - 12)
            continue
        try:
            event = event_pb2.Event.FromString(payload)
        except DecodeError:
            decoded.corrupt.append(base + start - 12)
            continue
        _decode_event(event, first_index + row, decoded, plugins)
    return decoded


def _decode_event(event: event_pb2.Event, index: int, decoded: DecodedEvents, plugins: TagPlugins) -> None:
    what = event.WhichOneof("what")
    if what == "summary":
        for value in event.summary.value:
            _decode_value(value, event.step, event.wall_time, index, decoded, plugins)
    elif what in ("graph_def", "meta_graph_def"):
        decoded.summaries.setdefault("graph", TagPoints()).add(index, event.step, event.wall_time, "graphs")
    elif what == "tagged_run_metadata":
        tag = event.tagged_run_metadata.tag or "run_metadata"
        decoded.summaries.setdefault(tag, TagPoints()).add(index, event.step, event.wall_time, "run_metadata")


def _decode_value(
    value: summary_pb2.Summary.Value, step: int, time: float, index: int, decoded: DecodedEvents, plugins: TagPlugins
) -> None:
    tag = value.tag or value.node_name
    if value.HasField("metadata") and value.metadata.plugin_data.plugin_name:
        plugins.of_tag.setdefault(tag, value.metadata.plugin_data.plugin_name)
    plugin = plugins.of_tag.get(tag, "")
    if plugin == HPARAMS_PLUGIN:
        _decode_hparams(value.metadata.plugin_data.content, decoded)
        return
    kind = value.WhichOneof("value")
    if kind == "simple_value":
        decoded.scalars.setdefault(tag, TagPoints()).add(index, step, time, float(value.simple_value))
        return
    if kind == "tensor":
        found = _tensor_point(value.tensor, plugin)
        if found is not None:
            table, point = found
            getattr(decoded, table).setdefault(tag, TagPoints()).add(index, step, time, point)
            return
    if kind is not None:
        name = plugin or _KIND_OF_VALUE.get(kind, kind)
        decoded.summaries.setdefault(tag, TagPoints()).add(index, step, time, name)


def _tensor_point(tensor: Any, plugin: str) -> tuple[str, Any] | None:
    """``("scalars", number)`` or ``("texts", string)`` for a tensor that is one, else None."""
    from tensorboard.util import tensor_util  # imports only when a record needs it (most take the fast path)

    if plugin not in ("", SCALARS_PLUGIN, TEXT_PLUGIN):
        return None
    try:
        array = tensor_util.make_ndarray(tensor)
    except (ValueError, TypeError, KeyError):
        return None
    if array.dtype.kind in "SUO" and (plugin == TEXT_PLUGIN or plugin == ""):
        strings = [item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item) for item in array.ravel()]
        return "texts", "\n".join(strings)
    if plugin != TEXT_PLUGIN and array.dtype.kind in "biuf" and array.size == 1:
        return "scalars", float(array.ravel()[0])
    return None


def _decode_hparams(content: bytes, decoded: DecodedEvents) -> None:
    from tensorboard.plugins.hparams import plugin_data_pb2  # the hparams protos: only for runs that have them

    try:
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
    except DecodeError:
        return
    which = data.WhichOneof("data")
    if which == "session_start_info":
        for name, value in data.session_start_info.hparams.items():
            decoded.hparams[name] = _hparam_text(value)
    elif which == "session_end_info":
        decoded.session_status = _SESSION_STATUS.get(data.session_end_info.status, "unknown")


def _hparam_text(value: Any) -> str:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        if math.isfinite(number) and number == int(number) and abs(number) < 2**53:
            return str(int(number))
        return repr(number)
    if kind == "bool_value":
        return str(value.bool_value)
    if kind == "string_value":
        return value.string_value
    return ""

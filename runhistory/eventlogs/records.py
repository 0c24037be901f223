"""TFRecord framing of TensorBoard event files: writing a record, and finding the records in bytes.

Each record is framed as::

    uint64 length (little endian) | uint32 masked crc32c(length) | data | uint32 masked crc32c(data)

:func:`scan_records` finds the records in a piece of a file: the walk from length to length is
the only per-record Python; the header checksums are checked for all records at once with numpy
(crc32c is affine over GF(2): the checksum of a fixed-length message is the XOR of per-byte
table entries, see :func:`masked_crcs`). A header that fails its checksum means its length
cannot be trusted: the scan looks for the next valid header and reports the bytes between as
one corrupt record. Payload checksums are left to the decoder, which checks most of them the
same vectorised way (see :mod:`runhistory.eventlogs.decode`).
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass, field
from typing import Sequence

import crc32c
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["RecordScan", "first_bad_payload", "header_ok", "frame_record", "masked_crc32c", "masked_crcs", "scan_records"]

HEADER_BYTES = 12  # length + its crc
FOOTER_BYTES = 4  # crc of the data
MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF
# A length beyond this is taken for corruption even when its checksum matches by chance.
MAX_RECORD_BYTES = 1 << 31


def _mask(crc: int) -> int:
    """Apply TFRecord's crc mask to a crc32c value."""
    return ((((crc >> 15) | (crc << 17)) & _U32) + MASK_DELTA) & _U32


def masked_crc32c(data: bytes | memoryview) -> int:
    """The masked crc32c that frames TFRecord headers and payloads."""
    return _mask(crc32c.crc32c(data))


def frame_record(data: bytes) -> bytes:
    """Frame ``data`` as one TFRecord record (length, masked crcs)."""
    header = struct.pack("<Q", len(data))
    return b"".join((header, struct.pack("<I", masked_crc32c(header)), data, struct.pack("<I", masked_crc32c(data))))


# --------------------------------------------------------------------------- vectorized crc

_crc_tables: dict[int, np.ndarray] = {}
_crc_tables_lock = threading.Lock()


def crc_table(distance: int) -> np.ndarray:
    """XOR contribution to crc32c of each byte value placed ``distance`` bytes before the end.

    crc32c(message) for messages of a fixed length is ``L(message) ^ crc32c(zeros)`` with L
    linear, and L of one byte only depends on its distance to the end of the message.
    """
    table = _crc_tables.get(distance)
    if table is not None:
        return table
    zeros = bytes(distance)
    base = crc32c.crc32c(zeros)
    basis = [crc32c.crc32c(bytes([1 << bit]) + zeros[1:]) ^ base for bit in range(8)]
    values = np.arange(256, dtype=np.uint32)
    table = np.zeros(256, dtype=np.uint32)
    for bit, contribution in enumerate(basis):
        table ^= np.where((values >> bit) & 1, np.uint32(contribution), np.uint32(0))
    with _crc_tables_lock:
        _crc_tables[distance] = table
    return table


def masked_crcs(template: bytes, positions: Sequence[int], variable: np.ndarray) -> np.ndarray:
    """Masked crc32c of every row of ``template`` with ``variable`` bytes at ``positions``.

    ``template`` holds zeros at ``positions``; ``variable`` is an (n, len(positions)) uint8
    array. Returns n uint32 values.
    """
    length = len(template)
    crc = np.full(variable.shape[0], crc32c.crc32c(template), dtype=np.uint32)
    for column, position in enumerate(positions):
        crc ^= crc_table(length - position)[variable[:, column]]
    rotated = (crc >> np.uint32(15)) | (crc << np.uint32(17))
    return rotated + np.uint32(MASK_DELTA)


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class RecordScan:
    """The complete records found in ``data`` (a piece of a file read from file offset ``base``).

    ``starts`` and ``lengths`` locate each record's payload in ``data`` (int64 arrays, in file
    order); ``end`` is the file offset after the last complete record (where the next read
    starts); ``corrupt`` holds the file offsets of stretches skipped because their header was
    damaged; ``partial`` is the number of bytes after ``end`` that do not yet form a record.
    """

    starts: np.ndarray
    lengths: np.ndarray
    end: int
    corrupt: list[int] = field(default_factory=list)
    partial: int = 0


def scan_records(data: bytes, base: int = 0) -> RecordScan:
    """The records of ``data``; a record cut off at the end waits (``partial``) for its rest."""
    heads: list[int] = []  # offset of each record's header
    corrupt: list[int] = []
    position = 0
    while True:
        checked = len(heads)
        position, absurd = _walk(data, position, heads)
        bad = _first_bad_header(data, heads, checked)
        if bad is None and not absurd:
            break
        if bad is not None:  # records from the bad one on are not trusted
            position = heads[bad]
            del heads[bad:]
        corrupt.append(base + position)
        resync = _next_header(data, position + 1)
        if resync is None:  # skip what cannot start a header; the last bytes may be one arriving
            position = max(position + 1, len(data) - HEADER_BYTES + 1)
            break
        position = resync
    starts = np.asarray(heads, dtype=np.int64) + HEADER_BYTES
    return RecordScan(starts, _lengths(data, starts), base + position, corrupt, len(data) - position)


_LENGTH = struct.Struct("<Q")


_RUN_PROBE = 4096  # records of one length looked for at once (see _equal_lengths)


def _walk(data: bytes, position: int, heads: list[int]) -> tuple[int, bool]:
    """Follow the lengths from ``position`` while whole records fit: where it stopped, and whether
    it stopped at a damaged header (a length too large to be one, or one that runs past the data and
    fails its checksum; the headers of the records found are checked later, all at once). Where two records in a row have the same length,
    the records that follow with that length are found at once (scalar logs are long runs of them)."""
    unpack = _LENGTH.unpack_from
    append = heads.append
    size = len(data)
    previous = -1
    while position + HEADER_BYTES <= size:
        (length,) = unpack(data, position)
        if length > MAX_RECORD_BYTES:
            return position, True
        stride = HEADER_BYTES + length + FOOTER_BYTES
        if position + stride > size:  # the rest may be arriving, unless the length itself is damaged
            return position, not header_ok(data, position)
        if length == previous:
            found = _equal_lengths(data, position, length, stride)
            heads.extend(range(position, position + found * stride, stride))
            position += found * stride
            previous = -1
            continue
        append(position)
        position += stride
        previous = length
    return position, False


def _equal_lengths(data: bytes, position: int, length: int, stride: int) -> int:
    """How many records from ``position`` on, one after the other, have this length (at least one)."""
    whole = (len(data) - position) // stride
    count = min(whole, _RUN_PROBE)
    at = position + np.arange(count, dtype=np.int64) * stride
    buffer = np.frombuffer(data, dtype=np.uint8)
    fields = _rows(buffer, at, 8).view("<u8").ravel()
    differ = np.flatnonzero(fields != length)
    return int(differ[0]) if differ.size else count


def _rows(buffer: np.ndarray, offsets: np.ndarray, width: int) -> np.ndarray:
    """``width`` bytes at each offset, as an (n, width) array (rows of a strided view: no index
    array of n x width)."""
    return sliding_window_view(buffer, width)[offsets]


def header_ok(data: bytes, position: int) -> bool:
    """Whether the 12 bytes at ``position`` are a record header whose checksum holds."""
    (crc,) = struct.unpack_from("<I", data, position + 8)
    return masked_crc32c(memoryview(data)[position : position + 8]) == crc


def _lengths(data: bytes, starts: np.ndarray) -> np.ndarray:
    if not starts.size:
        return np.zeros(0, dtype=np.int64)
    buffer = np.frombuffer(data, dtype=np.uint8)
    fields = _rows(buffer, starts - HEADER_BYTES, 8)
    return np.ascontiguousarray(fields).view("<u8").ravel().astype(np.int64)


def _first_bad_header(data: bytes, heads: list[int], first: int) -> int | None:
    """Index of the first record from ``first`` on whose header checksum fails, or None. A header's
    checksum depends only on its length: one C crc32c per distinct length."""
    if len(heads) <= first:
        return None
    buffer = np.frombuffer(data, dtype=np.uint8)
    at = np.asarray(heads[first:], dtype=np.int64)
    headers = _rows(buffer, at, HEADER_BYTES)
    lengths = np.ascontiguousarray(headers[:, :8]).view("<u8").ravel()
    stored = np.ascontiguousarray(headers[:, 8:]).view("<u4").ravel()
    distinct, which = np.unique(lengths, return_inverse=True)
    expected = np.array([masked_crc32c(_LENGTH.pack(int(length))) for length in distinct], dtype=np.uint32)[which]
    bad = np.flatnonzero(expected != stored)
    return first + int(bad[0]) if bad.size else None


_RESYNC_BLOCK = 1 << 16


def _next_header(data: bytes, position: int) -> int | None:
    """The next position at or after ``position`` that holds a header with a valid checksum and a
    plausible length (vectorised over blocks of candidate positions: garbage is scanned fast)."""
    buffer = np.frombuffer(data, dtype=np.uint8)
    last = len(data) - HEADER_BYTES  # the last position a whole header fits at
    while position <= last:
        candidates = np.arange(position, min(position + _RESYNC_BLOCK, last + 1), dtype=np.int64)
        headers = _rows(buffer, candidates, HEADER_BYTES)
        expected = masked_crcs(bytes(8), range(8), headers[:, :8])
        stored = np.ascontiguousarray(headers[:, 8:]).view("<u4").ravel()
        lengths = np.ascontiguousarray(headers[:, :8]).view("<u8").ravel()
        found = np.flatnonzero((expected == stored) & (lengths <= MAX_RECORD_BYTES))
        if found.size:
            return int(candidates[found[0]])
        position = int(candidates[-1]) + 1
    return None


def first_bad_payload(data: bytes, scan: RecordScan) -> int | None:
    """Index of the first record of ``scan`` whose payload fails its checksum, or None (one C
    crc32c a record: for a checker of raw bytes; the decoder checks most payloads vectorised)."""
    view = memoryview(data)
    unpack = struct.Struct("<I").unpack_from
    for index, (start, length) in enumerate(zip(scan.starts.tolist(), scan.lengths.tolist())):
        if masked_crc32c(view[start : start + length]) != unpack(data, start + length)[0]:
            return index
    return None


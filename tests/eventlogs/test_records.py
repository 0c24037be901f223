"""scan_records finds the records of real event files, and copes with cut, damaged and foreign bytes.

The files are written by TensorBoard's own ``EventFileWriter``; damage is done to their bytes.
A payload's checksum is the decoder's to check (a damaged payload is one corrupt record there);
a header's is the scan's (its length cannot be trusted: the scan resynchronises on the next one).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c as tensorboard_masked_crc32c
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from runhistory.eventlogs.decode import TagPlugins, decode_records
from runhistory.eventlogs.records import RecordScan, frame_record, masked_crc32c, scan_records

HEADER, FOOTER = 12, 4
WALL0 = 1_700_000_000.5
EVENTS = 40


def write_scalar_file(folder: Path, events: int = EVENTS) -> Path:
    """A real event file: the version record, then ``events`` scalars of tag ``loss`` at steps 1...;
    TensorBoard's EventFileWriter frames them."""
    writer = EventFileWriter(str(folder))
    for step in range(1, events + 1):
        value = summary_pb2.Summary.Value(tag="loss", simple_value=1.0 / step)
        writer.add_event(event_pb2.Event(wall_time=WALL0 + step, step=step, summary=summary_pb2.Summary(value=[value])))
    writer.close()
    (path,) = folder.glob("*tfevents*")
    return path


def record_offsets(scan: RecordScan) -> list[int]:
    """The file offset of each record's header."""
    return (scan.starts - HEADER).tolist()


def payloads(data: bytes, scan: RecordScan) -> list[bytes]:
    """Each record's payload."""
    return [data[start : start + length] for start, length in zip(scan.starts.tolist(), scan.lengths.tolist())]


def loss_steps(data: bytes, scan: RecordScan, base: int = 0) -> list[int]:
    """The steps of tag ``loss`` decoded from ``scan`` of ``data``."""
    decoded = decode_records(data, scan, plugins=TagPlugins(), base=base)
    return decoded.scalars["loss"].ordered()[0].tolist() if "loss" in decoded.scalars else []


def assert_skipped_to_the_end(scan: RecordScan, size: int) -> None:
    """Bytes that hold no record are skipped up to the end, but for fewer than a header's worth
    that may yet begin one (they wait, like a partial record)."""
    assert scan.end + scan.partial == size and scan.partial < HEADER


# --------------------------------------------------------------------------- whole files


def test_records_of_a_tensorboard_file_are_tensorboards_records(tmp_path: Path) -> None:
    data = write_scalar_file(tmp_path).read_bytes()
    scan = scan_records(data)
    theirs = list(RawEventFileLoader(str(next(tmp_path.glob("*tfevents*")))).Load())
    assert payloads(data, scan) == theirs
    assert len(theirs) == EVENTS + 1  # the file_version record first
    assert (scan.end, scan.corrupt, scan.partial) == (len(data), [], 0)
    assert b"".join(frame_record(payload) for payload in theirs) == data
    for payload in theirs[:3]:
        assert masked_crc32c(payload) == tensorboard_masked_crc32c(payload)


def test_an_empty_file_has_no_records() -> None:
    scan = scan_records(b"", 1234)
    assert (scan.starts.size, scan.end, scan.corrupt, scan.partial) == (0, 1234, [], 0)


# --------------------------------------------------------------------------- a record cut off at the end


@pytest.mark.parametrize("kept", [1, HEADER - 1, HEADER, HEADER + 5, -FOOTER, -1], ids=["1-byte", "header-less-1", "header", "payload", "no-footer", "last-byte-missing"])
def test_a_record_cut_off_at_the_end_waits_and_is_read_once_complete(kept: int, tmp_path: Path) -> None:
    data = write_scalar_file(tmp_path).read_bytes()
    last = record_offsets(scan_records(data))[-1]
    cut = last + kept if kept > 0 else len(data) + kept
    early = scan_records(data[:cut])
    assert early.end == last and early.partial == cut - last and early.corrupt == []
    assert loss_steps(data[:cut], early) == list(range(1, EVENTS))
    rest = data[early.end :]
    late = scan_records(rest, early.end)  # the next read starts where the first one stopped
    assert (record_offsets(late), late.end, late.partial, late.corrupt) == ([0], len(data), 0, [])
    assert loss_steps(rest, late, early.end) == [EVENTS]


# --------------------------------------------------------------------------- damage


def test_a_damaged_payload_is_one_corrupt_record_and_the_rest_is_read(tmp_path: Path) -> None:
    data = bytearray(write_scalar_file(tmp_path).read_bytes())
    offsets = record_offsets(scan_records(bytes(data)))
    damaged = offsets[10]  # the record of step 10
    data[damaged + HEADER + 7] ^= 0x40
    scan = scan_records(bytes(data))
    assert record_offsets(scan) == offsets and scan.corrupt == []  # the framing is intact
    decoded = decode_records(bytes(data), scan, plugins=TagPlugins())
    assert decoded.corrupt == [damaged]
    assert decoded.scalars["loss"].ordered()[0].tolist() == [step for step in range(1, EVENTS + 1) if step != 10]


@pytest.mark.parametrize(
    "byte, flip",
    [(0, 0x01), (0, 0x7F), (2, 0x01), (3, 0x01), (5, 0x01), (7, 0x80), (8, 0x01), (11, 0x80)],
    ids=["length+1", "length-low-byte", "length+64K", "length+16M", "length+2^40", "length+2^63", "crc", "crc-high"],
)
def test_a_damaged_header_resynchronises_on_the_next_record(byte: int, flip: int, tmp_path: Path) -> None:
    """Whatever the damaged length says (a little longer, longer than the file, absurd), the
    scan skips that record as corrupt and reads every record after it."""
    data = bytearray(write_scalar_file(tmp_path).read_bytes())
    offsets = record_offsets(scan_records(bytes(data)))
    damaged = offsets[10]
    data[damaged + byte] ^= flip
    scan = scan_records(bytes(data))
    assert scan.corrupt == [damaged]
    assert record_offsets(scan) == offsets[:10] + offsets[11:]
    assert (scan.end, scan.partial) == (len(data), 0)
    assert loss_steps(bytes(data), scan) == [step for step in range(1, EVENTS + 1) if step != 10]


def test_two_damaged_headers_are_two_corrupt_stretches(tmp_path: Path) -> None:
    data = bytearray(write_scalar_file(tmp_path).read_bytes())
    offsets = record_offsets(scan_records(bytes(data)))
    for index in (5, 30):
        data[offsets[index] + 9] ^= 0x10
    scan = scan_records(bytes(data))
    assert scan.corrupt == [offsets[5], offsets[30]]
    assert len(loss_steps(bytes(data), scan)) == EVENTS - 2


def test_a_record_cut_off_just_after_a_damaged_one_still_waits_for_its_rest(tmp_path: Path) -> None:
    """A live file with damage: the next record's first bytes are not taken for more damage."""
    data = bytearray(write_scalar_file(tmp_path).read_bytes())
    offsets = record_offsets(scan_records(bytes(data)))
    data[offsets[20] + 9] ^= 0x20
    cut = offsets[21] + 5  # record 21 has been written up to the middle of its header
    early = scan_records(bytes(data[:cut]))
    assert early.corrupt == [offsets[20]]
    late = scan_records(bytes(data[early.end :]), early.end)
    steps = loss_steps(bytes(data[:cut]), early) + loss_steps(bytes(data[early.end :]), late, early.end)
    assert steps == [step for step in range(1, EVENTS + 1) if step != 20]


# --------------------------------------------------------------------------- foreign bytes


def test_pure_garbage_is_one_corrupt_stretch_and_no_record() -> None:
    garbage = np.random.default_rng(7).bytes(10_000)
    scan = scan_records(garbage, 100)
    assert scan.starts.size == 0
    assert scan.corrupt == [100]
    assert_skipped_to_the_end(scan, 100 + len(garbage))
    assert decode_records(garbage, scan, plugins=TagPlugins(), base=100).records == 0


def test_records_after_garbage_are_found(tmp_path: Path) -> None:
    data = write_scalar_file(tmp_path).read_bytes()
    garbage = np.random.default_rng(8).bytes(5_000)
    scan = scan_records(garbage + data)
    assert scan.corrupt == [0]
    assert record_offsets(scan) == [offset + len(garbage) for offset in record_offsets(scan_records(data))]
    assert loss_steps(garbage + data, scan) == list(range(1, EVENTS + 1))


def test_twenty_megabytes_of_garbage_named_like_an_event_file_are_skipped_as_one_stretch(tmp_path: Path) -> None:
    path = tmp_path / "events.out.tfevents.1700000000.host.garbage"
    path.write_bytes(np.random.default_rng(9).bytes(20 << 20))
    data = path.read_bytes()
    scan = scan_records(data)  # the resync scans candidate headers vectorised: this takes about a second
    decoded = decode_records(data, scan, plugins=TagPlugins())
    assert scan.starts.size == 0 and decoded.records == 0
    assert scan.corrupt == [0]
    assert_skipped_to_the_end(scan, len(data))


def test_a_length_prefix_that_claims_a_whole_file_of_zeros_is_not_a_record() -> None:
    """Zeros frame as records of length 0 only with their checksums; bare zeros have none."""
    zeros = bytes(4096)
    scan = scan_records(zeros)
    assert scan.starts.size == 0 and scan.corrupt == [0]
    assert_skipped_to_the_end(scan, len(zeros))
    framed = frame_record(b"") * 3
    assert scan_records(framed).lengths.tolist() == [0, 0, 0]
    assert struct.unpack_from("<Q", framed)[0] == 0

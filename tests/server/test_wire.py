"""The pieces under the server, without a server: the points encoding, batch ids, the spool file."""

from __future__ import annotations

import math
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from runhistory import Experiment
from runhistory.protocol import wire
from runhistory.store.base import MetricBatch, MetricKind
from runhistory.client.spool import METRICS, STATUS, SpoolRecord, read_spool_file


def test_batches_round_trip_numbers_strings_specials_and_mixed_steps() -> None:
    batches = [
        MetricBatch("r", "f", MetricKind.SCALAR, [1.5, math.nan, math.inf], [None, None, None], [1.0, 2.0, 3.0]),
        MetricBatch("r", "i", MetricKind.SCALAR, [1, 2], [10, 20], [1.0, 2.0], "ints"),
        MetricBatch("r", "s", MetricKind.TABLE, [{"a": 1}, "x"], [None, 5], [1.0, 2.0]),
    ]
    back = wire.decode_batches(wire.encode_batches(batches), 1 << 20)
    assert [b.name for b in back] == ["f", "i", "s"]
    assert back[0].values[0] == 1.5 and math.isnan(back[0].values[1]) and back[0].steps == [None] * 3
    # numbers and steps arrive as the int64 / float64 arrays the store takes as they are
    assert back[0].values.dtype == np.float64 and back[1].values.dtype == np.int64 and back[1].steps.dtype == np.int64
    assert back[1].values.tolist() == [1, 2] and back[1].steps.tolist() == [10, 20] and back[1].description == "ints"
    assert back[2].values == [{"a": 1}, "x"] and back[2].steps == [None, 5] and back[2].times.tolist() == [1.0, 2.0]


def test_bad_and_oversized_messages_are_refused() -> None:
    with pytest.raises(wire.WireError):
        wire.decode_batches(b"not zlib", 1 << 20)
    with pytest.raises(wire.WireError):
        wire.decode_batches(zlib.compress(b"RHW1\x05\x00\x00\x00[{}]]"), 1 << 20)
    with pytest.raises(wire.TooLargeError):
        wire.decode_batches(zlib.compress(b"\0" * (2 << 20)), 1 << 20)


def test_a_batch_id_applies_a_batch_once(exp: Experiment) -> None:
    run = exp.start_logging()
    store = exp.workspace.store
    batch = MetricBatch(run.id, "x", MetricKind.SCALAR, [1, 2, 3], [None] * 3, [1.0, 2.0, 3.0])
    store.append_metrics([batch], batch_id="b-1")
    store.append_metrics([batch], batch_id="b-1")  # a retry
    store.append_metrics([batch], batch_id="b-2")
    assert store.get_metrics(run.id)["x"].values == [1, 2, 3, 1, 2, 3]


def test_batch_ids_are_remembered_for_30_days_then_pruned(exp: Experiment) -> None:
    from runhistory.store.sql.store import BATCH_ID_RETENTION_S

    run = exp.start_logging()
    store = exp.workspace.store
    batch = MetricBatch(run.id, "x", MetricKind.SCALAR, [7], [None], [1.0])
    store.append_metrics([batch], batch_id="old")  # (the first batch with an id also prunes, finding nothing)
    assert BATCH_ID_RETENTION_S == 30 * 24 * 3600
    assert store.prune_batch_ids(time.time() - BATCH_ID_RETENTION_S) == 0  # applied just now: kept
    store.append_metrics([batch], batch_id="old")
    assert store.get_metrics(run.id)["x"].values == [7]
    assert store.prune_batch_ids(time.time() + 1) == 1  # as if 30 days had passed
    store.append_metrics([batch], batch_id="old")  # forgotten: applied again
    assert store.get_metrics(run.id)["x"].values == [7, 7]


def test_a_spool_file_cut_short_by_a_crash_keeps_its_whole_records(tmp_path: Path) -> None:
    path = tmp_path / "1.spool"
    records = [SpoolRecord(METRICS, "abc", b"payload"), SpoolRecord(STATUS, "", b'{"run_id": "r"}')]
    data = b'{"url": "http://x"}\n' + b"".join(record.encode() for record in records)
    path.write_bytes(data + SpoolRecord(METRICS, "cut", b"0123456789").encode()[:-3])
    header, found = read_spool_file(path)
    assert header == {"url": "http://x"} and found == records


def test_steps_pack_one_way_for_the_wire_and_the_store() -> None:
    from runhistory.store import codec

    for steps, encoding in [([None, None], codec.NO_STEPS), ([3, -(2**63)], codec.INT64), ([None, 7], codec.JSON)]:
        packed_as, blob = codec.encode_optional_steps(steps)
        assert packed_as == encoding and codec.decode_optional_steps(packed_as, blob, len(steps)) == steps
    with pytest.raises(ValueError, match="unknown step encoding"):
        codec.decode_optional_steps("zz", b"", 0)


def test_a_refusal_is_rebuilt_from_its_stable_code_or_an_old_servers_class_name() -> None:
    from runhistory.client.http import error_class, known_error_class
    from runhistory.core import errors

    assert error_class("run_finished", 409) is errors.RunFinishedError
    assert error_class("workspace_not_found", 404) is errors.WorkspaceNotFoundError
    assert error_class("RunFinishedError", 409) is errors.RunFinishedError  # transition: a server of before the codes
    assert error_class("a_code_of_a_newer_server", 404) is errors.NotFoundError
    assert error_class("first_line", 400) is errors.RunHistoryError and error_class(None, 409) is errors.RunHistoryError
    assert known_error_class("artifact_storage") is errors.ArtifactStorageError  # a 507 that is not retried
    assert known_error_class("a_code_of_a_newer_server") is None and known_error_class(None) is None

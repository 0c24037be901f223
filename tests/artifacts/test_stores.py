"""Every artifact store behaves the same: the local folder and S3 (a real SeaweedFS)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from runhistory.artifacts import ArtifactStore, open_artifact_store
from runhistory.artifacts import s3 as s3_module
from runhistory.artifacts.local import LocalArtifactStore
from runhistory.artifacts.s3 import S3ArtifactStore
from runhistory.core.errors import ArtifactNotFoundError, ArtifactPathError

RUN = "run-1"


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return LocalArtifactStore(tmp_path / "artifacts")
    return open_artifact_store(request.getfixturevalue("s3_uri"))


def test_write_returns_the_size_and_replaces(store: ArtifactStore) -> None:
    assert store.write(RUN, "outputs/model.bin", io.BytesIO(b"first version")) == 13
    assert store.write(RUN, "outputs/model.bin", io.BytesIO(b"second")) == 6
    assert store.read(RUN, "outputs/model.bin") == b"second"
    assert store.write(RUN, "empty", io.BytesIO(b"")) == 0
    assert store.read(RUN, "empty") == b"" and store.size(RUN, "empty") == 0


def test_append_at_offsets_and_a_retry_at_an_old_offset(store: ArtifactStore) -> None:
    assert store.append(RUN, "logs/driver.log", b"") == 0  # the first flush creates the file
    assert store.list(RUN) == {"logs/driver.log": 0}
    assert store.append(RUN, "logs/driver.log", b"one\n", 0) == 4
    assert store.append(RUN, "logs/driver.log", b"two\n", 4) == 8
    assert store.append(RUN, "logs/driver.log", b"three\n") == 14  # no offset: at the end
    assert store.append(RUN, "logs/driver.log", b"", 14) == 14
    # The same piece sent again (a retry), then a different piece at an older offset.
    assert store.append(RUN, "logs/driver.log", b"three\n", 8) == 14
    assert store.read(RUN, "logs/driver.log") == b"one\ntwo\nthree\n"
    assert store.append(RUN, "logs/driver.log", b"TWO\n", 4) == 8
    assert store.read(RUN, "logs/driver.log") == b"one\nTWO\n"
    assert store.append(RUN, "logs/driver.log", b"wo", 5) == 7  # inside a piece
    assert store.read(RUN, "logs/driver.log") == b"one\nTwo"
    assert store.append(RUN, "logs/driver.log", b"", 2) == 2  # truncate
    assert store.read(RUN, "logs/driver.log") == b"on" and store.size(RUN, "logs/driver.log") == 2
    with pytest.raises(ArtifactPathError, match="at 9: it has 2 bytes"):
        store.append(RUN, "logs/driver.log", b"x", 9)
    assert store.read(RUN, "logs/driver.log") == b"on"


def test_appending_to_an_uploaded_file_and_replacing_an_appended_one(store: ArtifactStore) -> None:
    store.write(RUN, "f", io.BytesIO(b"base"))
    assert store.append(RUN, "f", b"+1", 4) == 6
    assert store.append(RUN, "f", b"+2") == 8
    assert store.append(RUN, "f", b"E", 2) == 3  # inside the uploaded part
    assert store.read(RUN, "f") == b"baE"
    assert store.append(RUN, "f", b"+3") == 5
    assert store.write(RUN, "f", io.BytesIO(b"new")) == 3
    assert store.read(RUN, "f") == b"new" and store.list(RUN) == {"f": 3}
    assert store.append(RUN, "f", b"!") == 4
    assert store.read(RUN, "f") == b"new!"


def test_ranged_reads_of_a_growing_file(store: ArtifactStore) -> None:
    expected = b""
    for i in range(12):
        piece = bytes([65 + i]) * (i + 1)
        assert store.append(RUN, "logs/events", piece, len(expected)) == len(expected) + len(piece)
        expected += piece
        assert store.size(RUN, "logs/events") == len(expected)
        assert store.list(RUN, "logs/") == {"logs/events": len(expected)}
        # What a follower does: read the bytes that are new since its last pass.
        assert store.read(RUN, "logs/events", len(expected) - len(piece), len(piece)) == piece
    for offset, length in [(0, 1), (0, 3), (2, 10), (5, 40), (70, 100), (77, 1), (78, 5), (200, 3), (3, 0)]:
        assert store.read(RUN, "logs/events", offset, length) == expected[offset : offset + length]
    assert store.read(RUN, "logs/events", 10) == expected[10:]
    out = io.BytesIO()
    store.download(RUN, "logs/events", out, chunk_size=7)
    assert out.getvalue() == expected


def test_list_and_size(store: ArtifactStore) -> None:
    assert store.list(RUN) == {} and store.size(RUN, "nothing") is None
    store.write(RUN, "outputs/b.txt", io.BytesIO(b"bb"))
    store.write(RUN, "outputs/a.txt", io.BytesIO(b"a"))
    store.append(RUN, "logs/train/events.1", b"xyz")
    store.append(RUN, "logs/train/events.1", b"uvw")
    store.write(RUN, "logsbook", io.BytesIO(b"1234"))
    store.write("run-2", "outputs/other", io.BytesIO(b"other run"))
    assert store.list(RUN) == {"logs/train/events.1": 6, "logsbook": 4, "outputs/a.txt": 1, "outputs/b.txt": 2}
    assert list(store.list(RUN)) == sorted(store.list(RUN))
    assert store.list(RUN, "logs/") == {"logs/train/events.1": 6}
    assert store.list(RUN, "logs") == {"logs/train/events.1": 6, "logsbook": 4}
    assert store.list(RUN, "outputs/a") == {"outputs/a.txt": 1}
    assert store.list("run-2") == {"outputs/other": 9}
    assert store.list("run-3") == {}
    assert store.size(RUN, "logs/train/events.1") == 6 and store.size(RUN, "outputs/b.txt") == 2
    assert store.size(RUN, "logs/train") is None  # a folder is no file


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/etc/passwd", "C:/x", "..\\x", "", "a\x00b"])
def test_names_that_escape_the_run_are_refused(store: ArtifactStore, name: str) -> None:
    with pytest.raises(ArtifactPathError, match=f"of run {RUN}"):
        store.write(RUN, name, io.BytesIO(b"x"))
    with pytest.raises(ArtifactPathError):
        store.append(RUN, name, b"x")
    with pytest.raises(ArtifactPathError):
        store.read(RUN, name)
    with pytest.raises(ArtifactPathError):
        store.size(RUN, name)
    with pytest.raises(ArtifactPathError):
        store.list("../other-run")
    assert store.list(RUN) == {}


def test_missing_files(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactNotFoundError, match=f"Run {RUN} has no file 'nope.txt'"):
        store.read(RUN, "nope.txt")
    with pytest.raises(ArtifactNotFoundError):
        store.download(RUN, "nope.txt", io.BytesIO())
    store.write(RUN, "dir/file", io.BytesIO(b"x"))
    with pytest.raises(ArtifactNotFoundError):
        store.read(RUN, "dir")
    assert store.size(RUN, "nope.txt") is None


# -- S3 only: how appended pieces are kept -------------------------------------------------


@pytest.fixture
def s3_store(s3_uri: str) -> S3ArtifactStore:
    store = open_artifact_store(s3_uri)
    assert isinstance(store, S3ArtifactStore) and store.uri == s3_uri
    return store


def _keys(store: S3ArtifactStore) -> list[str]:
    return sorted(key[len(store.prefix) + 1 :] for key, _ in store._list_objects(store.prefix + "/"))


def test_s3_appends_are_pieces_that_get_merged_and_compacted(
    s3_store: S3ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_module, "MAX_SMALL_PARTS", 4)
    expected = b""
    for i in range(11):
        piece = f"line {i}\n".encode()
        s3_store.append(RUN, "system_logs/driver.log", piece, len(expected))
        expected += piece
        assert s3_store.read(RUN, "system_logs/driver.log") == expected
    keys = _keys(s3_store)
    assert all(key.startswith(f"parts/{RUN}/system_logs/driver.log/") for key in keys)
    assert len(keys) <= 5  # merged whenever more than 4 small pieces trail the file
    assert s3_store.list(RUN) == {"system_logs/driver.log": len(expected)}
    assert s3_store.compact(RUN, "system_logs/driver.log") == len(expected)
    assert _keys(s3_store) == [f"files/{RUN}/system_logs/driver.log"]
    assert s3_store.read(RUN, "system_logs/driver.log", 7, 9) == expected[7:16]
    assert s3_store.append(RUN, "system_logs/driver.log", b"more") == len(expected) + 4
    assert s3_store.read(RUN, "system_logs/driver.log") == expected + b"more"
    with pytest.raises(ArtifactNotFoundError):
        s3_store.compact(RUN, "nope")


def test_sealing_a_run_compacts_its_appended_files_on_s3_and_changes_nothing_else(store: ArtifactStore) -> None:
    store.write(RUN, "outputs/model.bin", io.BytesIO(b"weights"))
    for name in ("logs/events.out", "system_logs/driver.log"):
        for i in range(5):
            store.append(RUN, name, f"{name} {i}\n".encode())
    store.append("other-run", "logs/events.out", b"not this run")
    before = {name: store.read(RUN, name) for name in store.list(RUN)}
    sealed = store.seal(RUN)
    assert {name: store.read(RUN, name) for name in store.list(RUN)} == before
    if isinstance(store, S3ArtifactStore):
        assert sealed == 2
        run_keys = [key for key in _keys(store) if f"/{RUN}/" in key]
        assert run_keys == [f"files/{RUN}/{name}" for name in ("logs/events.out", "outputs/model.bin", "system_logs/driver.log")]
        assert any(key.startswith("parts/other-run/") for key in _keys(store))
    else:
        assert sealed == 0  # a folder has nothing to lay out
    assert store.seal(RUN) == 0 and store.seal("no-such-run") == 0


def test_s3_large_upload_is_multipart_and_reads_ranges(s3_store: S3ArtifactStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_module, "UPLOAD_BLOCK_BYTES", 5 * 1024 * 1024)  # S3's smallest part
    data = bytes(range(256)) * (12 * 1024 * 1024 // 256 + 17)  # three parts
    assert s3_store.write(RUN, "outputs/big.bin", io.BytesIO(data)) == len(data)
    head = s3_store._call("head_object", Key=f"{s3_store.prefix}/files/{RUN}/outputs/big.bin")
    assert "-" in head["ETag"]  # a multipart upload's ETag
    assert s3_store.size(RUN, "outputs/big.bin") == len(data)
    assert s3_store.read(RUN, "outputs/big.bin", 6_000_000, 1000) == data[6_000_000:6_001_000]


def test_s3_uri_forms(s3_env) -> None:
    from runhistory.core.errors import RunHistoryError

    assert S3ArtifactStore("s3://bucket/a/b/").uri == "s3://bucket/a/b"
    assert S3ArtifactStore("s3://bucket").uri == "s3://bucket"
    assert S3ArtifactStore("s3://bucket").endpoint_url == s3_env.endpoint_url
    with pytest.raises(RunHistoryError, match="names no bucket"):
        S3ArtifactStore("s3:///prefix")


def test_s3_a_follower_reading_while_pieces_are_merged_and_compacted_sees_every_byte_once(
    s3_store: S3ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    monkeypatch.setattr(s3_module, "MAX_SMALL_PARTS", 3)
    expected = b"".join(f"record {i:03d}\n".encode() for i in range(60))
    done = threading.Event()

    def writer() -> None:
        try:
            for i in range(60):
                s3_store.append(RUN, "logs/events", f"record {i:03d}\n".encode(), i * 11)
                if i in (20, 45):
                    s3_store.compact(RUN, "logs/events")
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    copy = b""
    while True:  # what the TensorBoard follower does: list, then read the new bytes
        finished = done.is_set()
        size = s3_store.list(RUN, "logs/").get("logs/events", 0)
        assert size >= len(copy), "a follower must never see a file shrink"
        copy += s3_store.read(RUN, "logs/events", len(copy), size - len(copy)) if size > len(copy) else b""
        if finished:
            break
    thread.join()
    assert copy == expected


def test_s3_refused_credentials_and_a_missing_bucket_are_clear_errors(s3_env, monkeypatch: pytest.MonkeyPatch) -> None:
    from runhistory.artifacts.s3 import S3AccessError

    with pytest.raises(S3AccessError, match="bucket does not exist"):
        S3ArtifactStore("s3://no-such-bucket/x").list(RUN)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    store = S3ArtifactStore(f"s3://{s3_env.bucket}/x")
    for call in (lambda: store.list(RUN), lambda: store.write(RUN, "f", io.BytesIO(b"x")), lambda: store.read(RUN, "f")):
        with pytest.raises(S3AccessError, match="AWS_ACCESS_KEY_ID"):
            call()


def test_names_with_spaces_and_unusual_characters(store: ArtifactStore) -> None:
    names = ["with space/ü ñ.txt", "plus+and%25percent", "logs/a=b&c?.log", "x/.hidden"]
    for i, name in enumerate(names):
        store.write(RUN, name, io.BytesIO(b"u" * i))
        store.append(RUN, name, b"!")
    assert store.list(RUN) == {name: names.index(name) + 1 for name in sorted(names)}
    for i, name in enumerate(names):
        assert store.read(RUN, name) == b"u" * i + b"!"

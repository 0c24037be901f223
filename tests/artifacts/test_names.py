"""A run's file names, on every artifact store (a folder, S3, a runhistory server): every name
given is listed, collisions and bad names are one sentence, files follow the umask, a full
disk leaves the previous file as it was."""

from __future__ import annotations

import errno
import io
import json
import os
import stat
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from runhistory import Experiment, Run, Workspace
from runhistory.artifacts import ArtifactStore, open_artifact_store
from runhistory.artifacts.local import TEMPORARY_FOLDER, LocalArtifactStore
from runhistory.client.artifacts import RemoteArtifactStore
from runhistory.core.errors import ArtifactConflictError, ArtifactPathError, ArtifactStorageError
from tests.helpers import run_python
from tests.server.support import ServerProcess

HIDDEN = [".upload-secret", ".gitignore", "x/.hidden", "a/.b/c.txt", ".upload-abc12345"]


@dataclass
class Files:
    """An artifact store and the id of a run whose files it keeps."""

    store: ArtifactStore
    run: str
    kind: str


@pytest.fixture(scope="module")
def names_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module (SQLite store, artifact folder); each test makes runs of its own."""
    process = ServerProcess(tmp_path_factory.mktemp("names") / "server").start()
    yield process
    process.stop()


@pytest.fixture
def client_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNHISTORY_SPOOL_DIR", str(tmp_path / "client" / "spool"))
    monkeypatch.setenv("RUNHISTORY_CONFIG_DIR", str(tmp_path / "client" / "home"))
    monkeypatch.delenv("RUNHISTORY_TOKEN", raising=False)


@pytest.fixture(params=["local", "s3", "server"])
def files(request: pytest.FixtureRequest, tmp_path: Path) -> Files:
    if request.param == "local":
        return Files(LocalArtifactStore(tmp_path / "artifacts"), "run-1", "local")
    if request.param == "s3":
        return Files(open_artifact_store(request.getfixturevalue("s3_uri")), "run-1", "s3")
    request.getfixturevalue("client_home")
    server: ServerProcess = request.getfixturevalue("names_server")
    run = Experiment(Workspace(server.url), f"names-{uuid.uuid4().hex[:8]}").start_logging()
    return Files(RemoteArtifactStore(server.url), run.id, "server")


@pytest.fixture(params=["local", "s3", "server"])
def sdk_run(request: pytest.FixtureRequest, tmp_path: Path) -> Run:
    """A running run of a workspace whose files are in a folder, on S3, or on a server."""
    if request.param == "local":
        ws = Workspace.create(tmp_path / "ws")
    elif request.param == "s3":
        ws = Workspace(tracking_uri=tmp_path / "ws", artifact_uri=request.getfixturevalue("s3_uri"))
    else:
        request.getfixturevalue("client_home")
        ws = Workspace(request.getfixturevalue("names_server").url)
    return Experiment(ws, f"names-{uuid.uuid4().hex[:8]}").start_logging()


# -- finding 7: every name is listed; collisions are one sentence ------------------------------


def test_hidden_files_are_listed_and_read_back(files: Files) -> None:
    for i, name in enumerate(HIDDEN):
        files.store.write(files.run, name, io.BytesIO(f"content {i}".encode()))
    files.store.append(files.run, ".appended", b"log")
    expected = {name: len(f"content {i}") for i, name in enumerate(HIDDEN)} | {".appended": 3}
    assert files.store.list(files.run) == dict(sorted(expected.items()))
    assert files.store.list(files.run, ".upload") == {".upload-abc12345": 9, ".upload-secret": 9}
    assert files.store.list(files.run, "x/") == {"x/.hidden": 9}
    for i, name in enumerate(HIDDEN):
        assert files.store.read(files.run, name) == f"content {i}".encode()


def test_the_sdk_lists_and_downloads_dot_files(sdk_run: Run, tmp_path: Path) -> None:
    sdk_run.upload_file(".upload-secret", io.BytesIO(b"secret"))
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / ".gitignore").write_text("*.pyc")
    (tmp_path / "src" / "sub" / ".env").write_text("A=1")
    assert sdk_run.upload_folder("code/", tmp_path / "src") == ["code/.gitignore", "code/sub/.env"]
    assert sdk_run.get_file_names() == [".upload-secret", "code/.gitignore", "code/sub/.env"]
    written = sdk_run.download_files(output_directory=tmp_path / "down")
    assert sorted(p.relative_to(tmp_path / "down").as_posix() for p in written) == sdk_run.get_file_names()
    assert (tmp_path / "down" / ".upload-secret").read_bytes() == b"secret"
    assert (tmp_path / "down" / "code" / "sub" / ".env").read_text() == "A=1"


def test_a_file_under_an_existing_file_is_a_conflict_naming_both(files: Files) -> None:
    files.store.write(files.run, "a", io.BytesIO(b"file a"))
    for attempt in (
        lambda: files.store.write(files.run, "a/b", io.BytesIO(b"x")),
        lambda: files.store.append(files.run, "a/b/c", b"x"),
    ):
        with pytest.raises(ArtifactConflictError, match=r"Cannot store 'a/b(/c)?' in run .*: the run already has a file 'a'") as caught:
            attempt()
        message = str(caught.value)
        assert "\n" not in message and "upload-" not in message and TEMPORARY_FOLDER not in message
    assert files.store.list(files.run) == {"a": 6} and files.store.read(files.run, "a") == b"file a"


def test_a_file_where_a_folder_is_is_a_conflict_naming_both(files: Files) -> None:
    files.store.write(files.run, "c/d", io.BytesIO(b"file c/d"))
    files.store.append(files.run, "e/f/g", b"appended")
    for name, inside in (("c", "c/d"), ("e", "e/f/g"), ("e/f", "e/f/g")):
        for attempt in (
            lambda: files.store.write(files.run, name, io.BytesIO(b"x")),
            lambda: files.store.append(files.run, name, b"x"),
        ):
            expected = f"Cannot store '{name}' in run .*: the run already has a folder of that name \\(it holds '{inside}'\\)"
            with pytest.raises(ArtifactConflictError, match=expected) as caught:
                attempt()
            assert "upload-" not in str(caught.value) and "IsADirectory" not in str(caught.value)
    assert files.store.list(files.run) == {"c/d": 8, "e/f/g": 8}
    assert files.store.read(files.run, "c/d") == b"file c/d"
    files.store.write(files.run, "c/d", io.BytesIO(b"replaced"))  # the file itself can still be replaced and grown
    assert files.store.append(files.run, "e/f/g", b"!") == 9


def test_the_sdk_refuses_colliding_uploads_with_one_sentence(sdk_run: Run, tmp_path: Path) -> None:
    sdk_run.upload_file("a", io.BytesIO(b"A"))
    with pytest.raises(ArtifactConflictError, match="already has a file 'a'"):
        sdk_run.upload_file("a/b", io.BytesIO(b"B"))
    sdk_run.upload_file("c/d", io.BytesIO(b"D"))
    with pytest.raises(ArtifactConflictError, match=r"already has a folder of that name \(it holds 'c/d'\)"):
        sdk_run.upload_file("c", io.BytesIO(b"C"))
    assert sdk_run.get_file_names() == ["a", "c/d"]
    assert sdk_run.download_file("a", tmp_path / "a").read_bytes() == b"A"


def test_no_temporary_file_is_ever_in_a_run_folder(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    store.write("run-1", "outputs/first", io.BytesIO(b"1"))
    seen: list[list[str]] = []

    class Watching(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:  # mid-upload: what is on disk under the run?
            run_folder = tmp_path / "artifacts" / "run-1"
            seen.append(sorted(path.relative_to(run_folder).as_posix() for path in run_folder.rglob("*")))
            return super().read(size)

    store.write("run-1", "outputs/second", Watching(b"x" * (9 << 20)))
    assert seen and all(names == ["outputs", "outputs/first"] for names in seen)
    assert store.list("run-1") == {"outputs/first": 1, "outputs/second": 9 << 20}
    assert os.listdir(tmp_path / "artifacts" / TEMPORARY_FOLDER) == []  # the upload's temporary file is gone
    with pytest.raises(ArtifactPathError):
        store.list(TEMPORARY_FOLDER)  # no run id reaches the store's own folder


def test_a_failed_read_of_the_source_leaves_nothing_behind(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    store.write("run-1", "f", io.BytesIO(b"old"))

    class Broken(io.RawIOBase):
        def readinto(self, buffer: bytearray) -> int:
            raise OSError(errno.EIO, "the source disk failed")

    with pytest.raises(OSError, match="the source disk failed"):
        store.write("run-1", "f", Broken())
    assert store.read("run-1", "f") == b"old" and os.listdir(tmp_path / "artifacts" / TEMPORARY_FOLDER) == []


# -- finding 19: modes follow the umask ---------------------------------------------------------


@pytest.mark.parametrize("umask, file_mode, folder_mode", [(0o022, 0o644, 0o755), (0o002, 0o664, 0o775), (0o077, 0o600, 0o700)])
def test_uploaded_and_appended_files_follow_the_umask(tmp_path: Path, umask: int, file_mode: int, folder_mode: int) -> None:
    old = os.umask(umask)
    try:
        store = LocalArtifactStore(tmp_path / "artifacts")
        store.write("run-1", "outputs/model.bin", io.BytesIO(b"weights"))
        store.write("run-1", "outputs/model.bin", io.BytesIO(b"replaced"))
        store.append("run-1", "logs/driver.log", b"line\n")
    finally:
        os.umask(old)
    run_folder = tmp_path / "artifacts" / "run-1"
    assert stat.S_IMODE((run_folder / "outputs" / "model.bin").stat().st_mode) == file_mode
    assert stat.S_IMODE((run_folder / "logs" / "driver.log").stat().st_mode) == file_mode
    assert stat.S_IMODE((run_folder / "outputs").stat().st_mode) == folder_mode


def test_files_uploaded_through_the_sdk_follow_the_umask_of_a_child_process(tmp_path: Path) -> None:
    result = run_python(
        f"""
        import io, os, stat
        os.umask(0o002)
        from runhistory import Experiment, Workspace
        ws = Workspace.create({str(tmp_path / "ws")!r})
        run = Experiment(ws, "modes").start_logging()
        run.upload_file("outputs/shared.txt", io.BytesIO(b"for the team"))
        path = os.path.join(ws.artifact_uri, run.id, "outputs", "shared.txt")
        print(oct(stat.S_IMODE(os.stat(path).st_mode)))
        run.complete()
        """
    )
    assert result.stdout.strip() == "0o664"


# -- finding 12: names are checked at the store's edge --------------------------------------------

BAD_NAMES = {
    "lone surrogate": ("a\ud800b", "lone surrogate"),
    "NUL": ("a\x00b", "control character"),
    "newline": ("logs/a\nb", "control character"),
    "DEL": ("a\x7fb", "control character"),
    "C1 control": ("a\x85b", "control character"),
    "backslash": ("a\\b", "backslash"),
    "absolute": ("/etc/passwd", "absolute"),
    "drive": ("C:/x", "absolute"),
    "dot dot": ("a/../b", r"'\.\.'"),
    "only dot dot": ("..", r"'\.\.'"),
    "doubled slash": ("a//b", "empty or '.' part"),
    "trailing slash": ("a/", "empty or '.' part"),
    "dot part": ("./a", "empty or '.' part"),
    "inner dot": ("a/./b", "empty or '.' part"),
    "empty": ("", "empty"),
    "blank": ("   ", "empty"),
    "long part": ("x" * 300, "at most 255 bytes"),
    "long multibyte part": ("é" * 128, "part of 256 bytes"),
    "long name": ("/".join(["y" * 200] * 6), "limit is 1024 bytes"),
    "not a string": (5, "must be a string"),
}


@pytest.mark.parametrize("label", list(BAD_NAMES))
def test_bad_names_are_one_sentence_before_anything_is_touched(files: Files, label: str) -> None:
    name, reason = BAD_NAMES[label]
    for attempt in (
        lambda: files.store.write(files.run, name, io.BytesIO(b"x")),
        lambda: files.store.append(files.run, name, b"x"),
        lambda: files.store.read(files.run, name),
        lambda: files.store.size(files.run, name),
    ):
        with pytest.raises(ArtifactPathError, match=reason) as caught:
            attempt()
        message = str(caught.value)
        assert f"of run {files.run}" in message and "\n" not in message and len(message) < 400
    assert files.store.list(files.run) == {}


def test_names_at_the_limits_are_kept(files: Files) -> None:
    longest_part = "p" * 255
    multibyte = "é" * 127  # 254 bytes
    for name in (longest_part, f"deep/{multibyte}/file", "ü ñ/名前.txt"):
        files.store.write(files.run, name, io.BytesIO(name.encode()))
        assert files.store.read(files.run, name) == name.encode()
    assert set(files.store.list(files.run)) == {longest_part, f"deep/{multibyte}/file", "ü ñ/名前.txt"}


def test_a_name_too_long_for_the_stores_keys_or_paths_is_one_sentence(files: Files) -> None:
    name = "/".join(["k" * 249] * 4)  # 999 bytes: inside the general limit
    if files.kind == "s3":  # S3 keys are at most 1024 bytes, and the key adds prefix, run and offset
        with pytest.raises(ArtifactPathError, match=r"too long for s3://.*at most 1024 bytes, which leaves \d+ bytes"):
            files.store.write(files.run, name, io.BytesIO(b"x"))
        assert files.store.list(files.run) == {}
    else:
        files.store.write(files.run, name, io.BytesIO(b"x"))
        assert files.store.list(files.run) == {name: 1}


@pytest.mark.parametrize("run_id", ["", ".", "..", ".tmp", "a/b", "../x", "r" * 256, "a\x00"])
def test_run_ids_that_are_no_single_folder_are_refused(files: Files, run_id: str) -> None:
    for attempt in (
        lambda: files.store.write(run_id, "f", io.BytesIO(b"x")),
        lambda: files.store.append(run_id, "f", b"x"),
        lambda: files.store.read(run_id, "f"),
        lambda: files.store.list(run_id),
    ):
        with pytest.raises(ArtifactPathError, match="Run id"):
            attempt()


def test_negative_offsets_and_lengths_are_refused(files: Files) -> None:
    files.store.write(files.run, "f", io.BytesIO(b"data"))
    with pytest.raises(ArtifactPathError, match="offset -1"):
        files.store.read(files.run, "f", -1)
    with pytest.raises(ArtifactPathError, match="length -5"):
        files.store.read(files.run, "f", 0, -5)
    with pytest.raises(ArtifactPathError, match="offset -1"):
        files.store.append(files.run, "f", b"x", -1)
    assert files.store.read(files.run, "f") == b"data"


def test_a_300_character_name_through_the_sdk_is_one_sentence(sdk_run: Run, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(ArtifactPathError, match="each part between slashes may have at most 255 bytes"):
        sdk_run.upload_file("n" * 300, tmp_path / "f")
    assert sdk_run.get_file_names() == []


@pytest.mark.parametrize(
    "name, reason",
    [("a%5Cb", "backslash"), ("a%00b", "control character"), ("a%1Fb", "control character"), ("x" * 300, "255 bytes"), ("a/", "empty")],
)
def test_the_server_checks_names_whatever_a_client_sends(
    names_server: ServerProcess, client_home: None, name: str, reason: str
) -> None:
    run = Experiment(Workspace(names_server.url), f"raw-{uuid.uuid4().hex[:8]}").start_logging()
    url = f"{names_server.url}/api/v1/runs/{run.id}/files/{name}"
    for method in ("PUT", "POST"):
        response = httpx.request(method, url, content=b"x")
        assert response.status_code == 400, (method, response.status_code, response.text)
        assert reason in response.json()["detail"]
    assert httpx.get(f"{names_server.url}/api/v1/runs/{run.id}/files").json() == {}


# -- finding 12: a full disk during an upload -------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MiB filesystem (tmpfs), mounted for this test and unmounted after it (needs root)."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)]
    mounted = subprocess.run(command, capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the disk-full test (run the tests as root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def _assert_full_disk_kept_the_old_files(store: ArtifactStore, run: str, where: str, caught: pytest.ExceptionInfo) -> None:
    message = str(caught.value)
    assert "disk is full" in message and where in message and "left as it was" in message and "\n" not in message
    assert store.read(run, "outputs/model.bin") == b"old weights"
    assert store.read(run, "logs/driver.log") == b"first line\n"
    assert store.list(run) == {"logs/driver.log": 11, "outputs/model.bin": 11}


def test_a_full_disk_during_an_upload_keeps_the_previous_file(small_disk: Path) -> None:
    store = LocalArtifactStore(small_disk / "artifacts")
    store.write("run-1", "outputs/model.bin", io.BytesIO(b"old weights"))
    store.append("run-1", "logs/driver.log", b"first line\n")
    with pytest.raises(ArtifactStorageError, match=r"Cannot store 'outputs/model.bin' of run run-1 in .*: the disk is full") as caught:
        store.write("run-1", "outputs/model.bin", io.BytesIO(b"w" * (4 << 20)))
    assert caught.value.errno == errno.ENOSPC and isinstance(caught.value, OSError)
    with pytest.raises(ArtifactStorageError, match="Cannot append to 'logs/driver.log'") as appended:
        store.append("run-1", "logs/driver.log", b"l" * (4 << 20))
    _assert_full_disk_kept_the_old_files(store, "run-1", str(small_disk), caught)
    _assert_full_disk_kept_the_old_files(store, "run-1", str(small_disk), appended)
    assert os.listdir(small_disk / "artifacts" / TEMPORARY_FOLDER) == []
    store.write("run-1", "outputs/model.bin", io.BytesIO(b"new weights"))  # once there is room, uploads work again
    assert store.read("run-1", "outputs/model.bin") == b"new weights"


def test_a_full_disk_on_the_server_is_one_sentence_for_the_client(small_disk: Path, tmp_path: Path, client_home: None) -> None:
    server = ServerProcess(tmp_path / "server", artifacts=small_disk / "artifacts").start()
    try:
        run = Experiment(Workspace(server.url), "full").start_logging()
        store = RemoteArtifactStore(server.url)
        store.write(run.id, "outputs/model.bin", io.BytesIO(b"old weights"))
        store.append(run.id, "logs/driver.log", b"first line\n")
        with pytest.raises(ArtifactStorageError, match="Cannot store 'outputs/model.bin' of run") as caught:
            store.write(run.id, "outputs/model.bin", io.BytesIO(b"w" * (4 << 20)))
        _assert_full_disk_kept_the_old_files(store, run.id, str(small_disk), caught)
        assert os.listdir(small_disk / "artifacts" / TEMPORARY_FOLDER) == []
    finally:
        server.stop()


def test_a_file_size_limit_during_an_upload_is_the_same_sentence(tmp_path: Path) -> None:
    # RLIMIT_FSIZE needs no root: the write fails with EFBIG (Python ignores SIGXFSZ).
    result = run_python(
        f"""
        import io, json, os, resource
        from runhistory.artifacts.local import LocalArtifactStore
        from runhistory.core.errors import ArtifactStorageError
        store = LocalArtifactStore({str(tmp_path / "artifacts")!r})
        store.write("run-1", "outputs/model.bin", io.BytesIO(b"old weights"))
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        try:
            store.write("run-1", "outputs/model.bin", io.BytesIO(b"w" * (2 << 20)))
        except ArtifactStorageError as exc:
            print(json.dumps({{"message": str(exc), "errno": exc.errno, "content": store.read("run-1", "outputs/model.bin").decode(),
                               "temporary": os.listdir({str(tmp_path / "artifacts" / TEMPORARY_FOLDER)!r})}}))
        """
    )
    outcome = json.loads(result.stdout)
    assert outcome["errno"] == errno.EFBIG and outcome["content"] == "old weights" and outcome["temporary"] == []
    assert "file size limit" in outcome["message"] and "left as it was" in outcome["message"]


def test_a_folder_left_empty_by_a_failed_upload_can_become_a_file_and_then_collides(files: Files) -> None:
    class Failing(io.RawIOBase):
        def readinto(self, buffer: bytearray) -> int:
            raise OSError(errno.EIO, "the source failed")

    with pytest.raises(OSError, match="the source failed"):
        files.store.write(files.run, "x/y", Failing())  # checked 'x' as a folder, then stored nothing
    files.store.write(files.run, "x", io.BytesIO(b"file x"))
    with pytest.raises(ArtifactConflictError, match="already has a file 'x'"):
        files.store.write(files.run, "x/z", io.BytesIO(b"z"))
    assert files.store.list(files.run) == {"x": 6}


def test_a_failing_source_replaces_nothing_and_leaves_no_folder(files: Files) -> None:
    files.store.write(files.run, "outputs/model.bin", io.BytesIO(b"old weights"))

    class HalfWay(io.RawIOBase):
        sent = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray) -> int:
            if self.sent:
                raise OSError(errno.EIO, "the source failed half way")
            self.sent = len(buffer)
            buffer[:] = b"n" * len(buffer)
            return len(buffer)

    for name in ("outputs/model.bin", "new/folder/file"):
        with pytest.raises(OSError, match="the source failed half way"):
            files.store.write(files.run, name, io.BufferedReader(HalfWay(), 1 << 16))
    assert files.store.list(files.run) == {"outputs/model.bin": 11}
    assert files.store.read(files.run, "outputs/model.bin") == b"old weights"
    files.store.write(files.run, "new", io.BytesIO(b"a file where the failed upload wanted a folder"))

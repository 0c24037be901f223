"""TensorboardServer: the real TensorBoard started and stopped as a child process group."""

from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from runhistory.core.errors import TensorboardError
from runhistory.tensorboard.events import EventFileWriter
from runhistory.tensorboard.launcher import TensorboardServer
from tests.helpers import port_is_free
from tests.tensorboard.conftest import WALL0, poll


def group_members(pgid: int) -> list[int]:
    """Pids of live (non-zombie) processes in process group ``pgid``, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, _ppid, pgrp = stat[stat.rfind(")") + 2 :].split()[:3]
            if state != "Z" and int(pgrp) == pgid:
                members.append(int(entry.name))
    return members


def write_run(folder: Path, points: int = 3) -> None:
    """A run folder with one small scalar series."""
    with EventFileWriter(folder) as writer:
        writer.add_scalars("loss", range(points), [float(i) for i in range(points)], WALL0)


def run_child(code: str) -> subprocess.Popen:
    """Start a Python child that runs ``code`` with stdout piped."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )


def test_start_serves_and_stop_leaves_nothing_behind(tmp_path: Path) -> None:
    write_run(tmp_path / "run")
    server = TensorboardServer(tmp_path, port=0, load_fast=True)
    url = server.start()
    pid, port = server.pid, server.port
    assert pid is not None and port and url == f"http://127.0.0.1:{port}/"
    assert httpx.get(url + "data/runs").json() == ["run"]
    assert len(group_members(pid)) >= 2  # TensorBoard and its Rust data server
    assert not port_is_free(port)

    server.stop()

    assert group_members(pid) == []
    assert port_is_free(port)
    assert server.pid is None and not server.running
    server.stop()  # a second stop is harmless


def test_context_manager_and_fixed_port(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with TensorboardServer(tmp_path, port=port, load_fast=False) as server:
        assert server.url == f"http://127.0.0.1:{port}/"
        assert httpx.get(f"{server.url}data/environment").status_code == 200
        pid = server.pid
    assert pid is not None and group_members(pid) == []
    assert port_is_free(port)


@pytest.mark.parametrize(("load_fast", "expected"), [(True, "1.0"), (None, "1.0"), (False, "0.25")])
def test_subsecond_reload_interval_is_raised_for_the_data_server(
    tmp_path: Path, load_fast: bool | None, expected: str
) -> None:
    command = TensorboardServer(tmp_path, reload_interval=0.25, load_fast=load_fast).command()
    assert command[command.index("--reload_interval") + 1] == expected
    assert command[command.index("--reload_multifile") + 1] == "true"


def test_stop_before_start_is_harmless(tmp_path: Path) -> None:
    server = TensorboardServer(tmp_path, port=0)
    server.stop()
    server.stop()
    assert server.url is None and server.pid is None


def test_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(TensorboardError, match=f"port {port}"):
            TensorboardServer(tmp_path, port=port).start()


def test_logdir_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("hello")
    with pytest.raises(TensorboardError, match="not a folder"):
        TensorboardServer(not_a_folder, port=0).start()


def test_tensorboard_exiting_early_reports_its_output(tmp_path: Path) -> None:
    server = TensorboardServer(tmp_path, port=0, extra_args=["--no_such_flag"])
    with pytest.raises(TensorboardError, match="no_such_flag") as caught:
        server.start()
    assert "exited with code" in str(caught.value)
    assert server.pid is None


@pytest.mark.parametrize("load_fast", [True, False], ids=["load_fast", "python_loader"])
def test_corrupt_event_files_do_not_stop_the_others(tmp_path: Path, load_fast: bool) -> None:
    write_run(tmp_path / "good", points=5)
    write_run(tmp_path / "truncated", points=50)
    (truncated,) = (tmp_path / "truncated").iterdir()
    truncated.write_bytes(truncated.read_bytes()[:-37])
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "events.out.tfevents.1.host.1.0").write_bytes(os.urandom(5000))

    with TensorboardServer(tmp_path, port=0, load_fast=load_fast) as server:

        def good_points() -> list:
            response = httpx.get(f"{server.url}data/plugin/scalars/scalars", params={"run": "good", "tag": "loss"})
            return response.json() if response.status_code == 200 else []

        assert [row[1] for row in poll(good_points, lambda rows: len(rows) == 5)] == [0, 1, 2, 3, 4]
        truncated_points = httpx.get(
            f"{server.url}data/plugin/scalars/scalars", params={"run": "truncated", "tag": "loss"}
        ).json()
        assert [row[1] for row in truncated_points] == list(range(49))


@pytest.mark.parametrize("load_fast", [True, False], ids=["load_fast", "python_loader"])
def test_samples_per_plugin_zero_serves_every_point(tmp_path: Path, load_fast: bool) -> None:
    write_run(tmp_path / "long", points=2500)
    with TensorboardServer(tmp_path, port=0, load_fast=load_fast, samples_per_plugin={"scalars": 0}) as server:

        def points() -> list:
            response = httpx.get(f"{server.url}data/plugin/scalars/scalars", params={"run": "long", "tag": "loss"})
            return response.json() if response.status_code == 200 else []

        rows = poll(points, lambda rows: len(rows) >= 2500)
    assert [row[1] for row in rows] == list(range(2500))


def test_garbage_collected_server_is_stopped(tmp_path: Path) -> None:
    server = TensorboardServer(tmp_path, port=0, load_fast=False)
    server.start()
    pid = server.pid
    assert pid is not None
    del server
    gc.collect()
    assert group_members(pid) == []


def test_exiting_without_stop_leaves_nothing_behind(tmp_path: Path) -> None:
    child = run_child(
        f"""
        from runhistory.tensorboard.launcher import TensorboardServer
        server = TensorboardServer({str(tmp_path)!r}, port=0, load_fast=True)
        server.start()
        print(server.pid, flush=True)
        """
    )
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    assert group_members(int(out)) == []


def test_killed_parent_takes_tensorboard_down(tmp_path: Path) -> None:
    child = run_child(
        f"""
        import time
        from runhistory.tensorboard.launcher import TensorboardServer
        server = TensorboardServer({str(tmp_path)!r}, port=0, load_fast=True)
        server.start()
        print(server.pid, flush=True)
        time.sleep(600)
        """
    )
    assert child.stdout is not None
    pid = int(child.stdout.readline())
    assert group_members(pid)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    child.stdout.close()
    assert poll(lambda: group_members(pid), lambda members: not members, timeout=15) == []


def test_restart_after_stop_is_fast(tmp_path: Path) -> None:
    with TensorboardServer(tmp_path, port=0, load_fast=True) as server:
        started = time.perf_counter()
        server.stop()
        server.start()
        elapsed = time.perf_counter() - started
        assert httpx.get(f"{server.url}data/runs").json() == []
    assert elapsed < 15

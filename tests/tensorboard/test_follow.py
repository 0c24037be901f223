"""Tensorboard([run]): the real TensorBoard following runs while they run, and stopping cleanly."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import httpx
import pytest

from runhistory import Experiment, Run, Workspace
from runhistory.core.errors import NotFoundError, TensorboardError
from runhistory.tensorboard import Tensorboard
from runhistory.tensorboard.events import EventFileWriter
from tests.helpers import port_is_free, start_python
from tests.tensorboard.conftest import assert_grows_while_watched, poll, scalar_steps

# A stand-in for a training job: it writes TensorBoard events itself into its run's logs/
# (as the job supervisor streams them) and logs run-history metrics, step by step, until
# told to stop through a file.
JOB = """
    import sys, time
    from pathlib import Path
    from runhistory import Workspace
    from runhistory.tensorboard.events import EventFileWriter
    ws = Workspace.from_config({workspace!r})
    run = ws.get_run({run_id!r})
    local = Path({local!r})
    writer = EventFileWriter(local)
    name = "logs/train/" + writer.path.name
    sent = 0
    step = 0
    while not Path({stop!r}).exists():
        writer.add_scalar("native_loss", 1.0 / (step + 1), step)
        writer.flush()
        data = writer.path.read_bytes()
        ws.artifacts.append(run.id, name, data[sent:], offset=sent)
        sent = len(data)
        run.log("history_loss", 2.0 / (step + 1))
        step += 1
        time.sleep(0.2)
    writer.close()
    run.complete()
"""


def test_a_running_job_grows_live_in_tensorboard(ws: Workspace, exp: Experiment, tmp_path: Path) -> None:
    run = exp.start_logging(display_name="job")
    stop_file = tmp_path / "stop"
    job = start_python(
        JOB.format(workspace=str(tmp_path / "ws"), run_id=run.id, local=str(tmp_path / "local"), stop=str(stop_file))
    )
    try:
        with Tensorboard([run], port=0) as board, httpx.Client(base_url=board.url, timeout=10) as client:
            for tag, folder in (("native_loss", "job-1/train"), ("history_loss", "job-1")):
                assert_grows_while_watched(client, folder, tag)
            assert run.get_status() == "Running"
            assert not board.wait_for_runs(timeout=0.3)  # a run still going is never final
            stop_file.touch()
            job.communicate(timeout=60)
            assert run.get_status() == "Completed"
            assert board.wait_for_runs(timeout=30)
            logged = len(run.get_metrics("history_loss")["history_loss"])
            assert scalar_steps(client, "job-1", "history_loss") == list(range(logged))
    finally:
        stop_file.touch()
        job.kill()
        job.communicate()


def test_children_that_appear_later_are_followed(exp: Experiment) -> None:
    root = exp.start_logging(display_name="sweep")
    with Tensorboard([root], port=0) as board, httpx.Client(base_url=board.url, timeout=10) as client:
        with root.child_run("late") as child:
            child.log("mse", 1.5)
        runs = poll(lambda: client.get("data/runs").json(), lambda r: "sweep-1/late-2" in r, timeout=30)
        assert "sweep-1/late-2" in runs
    root.complete()


def test_a_corrupt_event_file_is_reported_once_and_following_goes_on(
    ws: Workspace, exp: Experiment, tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    run = exp.start_logging(display_name="broken")
    with EventFileWriter(tmp_path / "good") as writer:
        writer.add_scalars("loss", [0, 1, 2], [3.0, 2.0, 1.0])
    good = writer.path.read_bytes()
    corrupt = bytearray(good)
    corrupt[-3] ^= 0xFF
    ws.artifacts.append(run.id, "logs/bad/events.out.tfevents.1.bad", bytes(corrupt))
    ws.artifacts.append(run.id, "logs/good/events.out.tfevents.1.good", good)
    with Tensorboard([run], port=0, follow_interval=0.05) as board, httpx.Client(base_url=board.url, timeout=10) as client:
        steps = poll(lambda: scalar_steps(client, "broken-1/good", "loss"), lambda s: s == [0, 1, 2], timeout=30)
        assert steps == [0, 1, 2]
        time.sleep(0.5)  # several more passes over the same corrupt file
        run.complete()
    reports = [line for line in capfd.readouterr().err.splitlines() if "corrupt" in line]
    assert len(reports) == 1 and "logs/bad/events.out.tfevents.1.bad" in reports[0]


def test_stop_leaves_no_process_and_frees_the_port(exp: Experiment) -> None:
    run = exp.start_logging()
    board = Tensorboard([run], port=0)
    url = board.start()
    pid = board._server.pid
    port = int(url.rsplit(":", 1)[1].strip("/"))
    root = board.local_root
    board.stop()
    board.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert port_is_free(port)
    assert not root.exists(), "the temporary local_root is removed"
    assert board.url is None


def test_serving_a_folder_as_it_is(tmp_path: Path) -> None:
    with EventFileWriter(tmp_path / "logs" / "mine") as writer:
        writer.add_scalars("acc", [0, 1], [0.5, 0.75])
    with Tensorboard([], local_root=tmp_path / "logs", port=0) as board:
        points = poll(
            lambda: httpx.get(board.url + "data/plugin/scalars/scalars", params={"run": "mine", "tag": "acc"}),
            lambda r: r.status_code == 200,
        ).json()
    assert [(p[1], p[2]) for p in points] == [(0, 0.5), (1, 0.75)]
    assert (tmp_path / "logs" / "mine").is_dir(), "a folder the user gave is kept"


def test_bad_input(tmp_path: Path, ws: Workspace, exp: Experiment, monkeypatch: pytest.MonkeyPatch) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(TensorboardError, match="is a file"):
        Tensorboard([], local_root=a_file).start()
    monkeypatch.setenv("RUNHISTORY_TRACKING_URI", ws.tracking_uri)
    with pytest.raises(NotFoundError, match="No run 'nope'"):
        Tensorboard(["nope"])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(TensorboardError, match=str(port)):
            Tensorboard([exp.start_logging()], port=port).start()

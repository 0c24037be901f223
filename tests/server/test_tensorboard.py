"""Tensorboard([run]) follows a run's growing event files and metrics through the server."""

from __future__ import annotations

from pathlib import Path

import httpx

from runhistory import Experiment
from runhistory.tensorboard import Tensorboard

from tests.helpers import start_python
from tests.server.support import ServerProcess
from tests.tensorboard.conftest import assert_grows_while_watched
from tests.tensorboard.test_follow import JOB


def test_a_running_job_grows_live_in_tensorboard_through_the_server(
    server: ServerProcess, remote_exp: Experiment, tmp_path: Path
) -> None:
    run = remote_exp.start_logging(display_name="job")
    stop_file = tmp_path / "stop"
    code = JOB.replace("Workspace.from_config({workspace!r})", "Workspace({workspace!r})")
    job = start_python(
        code.format(workspace=server.url, run_id=run.id, local=str(tmp_path / "local"), stop=str(stop_file)),
        **server.client_env(),
    )
    try:
        with Tensorboard([run], port=0) as board, httpx.Client(base_url=board.url, timeout=10) as client:
            for tag, folder in (("native_loss", "job-1/train"), ("history_loss", "job-1")):
                assert_grows_while_watched(client, folder, tag)
            stop_file.touch()
            _out, err = job.communicate(timeout=60)
            assert job.returncode == 0, err
            assert run.get_status() == "Completed"
    finally:
        stop_file.touch()
        job.kill()
        job.communicate()

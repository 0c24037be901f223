"""A job submitted to a server workspace: its logs, outputs and driver log reach the run over HTTP."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from runhistory import Experiment, ScriptRunConfig, Workspace
from runhistory.compute import ComputeTarget, LocalCompute

from tests.jobs.support import supervisors_under, wait_until, write_script
from tests.server.support import ServerProcess, runhistory_cli


def test_a_job_against_a_token_protected_server_uploads_over_http(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    server = ServerProcess(tmp_path / "server")
    created = runhistory_cli("server", "token", "create", "ci", "--workspace", server.store_uri)
    token = created.stdout.strip()
    server.start()
    try:
        ws = Workspace(server.url, token=token)
        target = ComputeTarget.create(ws, "here", LocalCompute.provisioning_configuration(working_directory=str(tmp_path / "jobs")))
        source = tmp_path / "project"
        write_script(
            source,
            "job.py",
            """
            import os
            from runhistory import Run
            run = Run.get_context()
            print("hello from the job", run.id)
            os.makedirs("logs", exist_ok=True)
            open("logs/progress.txt", "w").write("step 1\\n")
            os.makedirs("outputs", exist_ok=True)
            open("outputs/model.bin", "wb").write(b"weights")
            for i in range(100):
                run.log("loss", 1.0 / (i + 1))
            """,
        )
        run = Experiment(ws, "jobs").submit(ScriptRunConfig(source, "job.py", compute_target=target))
        details = run.wait_for_completion(show_output=True, timeout=60)  # the driver log, streamed over HTTP
        assert details["status"] == "Completed", details
        assert "hello from the job" in capsys.readouterr().out
        names = set(run.get_file_names())
        assert {"snapshot/job.py", "logs/progress.txt", "outputs/model.bin", "system_logs/driver.log"} <= names
        assert ws.artifacts.read(run.id, "outputs/model.bin") == b"weights"
        assert "hello from the job" in ws.artifacts.read(run.id, "system_logs/driver.log").decode()
        assert len(run.get_metrics()["loss"]) == 100
        # the files are in the server's artifact folder: the job needed no shared disk with the client
        assert (server.artifacts / run.id / "logs" / "progress.txt").read_text() == "step 1\n"
        wait_until(lambda: not supervisors_under(tmp_path), timeout=10, what="the job's supervisor to end")
    finally:
        server.stop()

"""Jobs end to end with real processes: how they end, what they leave, how they are watched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from runhistory import Experiment, Run, ScriptRunConfig, Workspace
from runhistory.compute import ComputeTarget, LocalCompute
from runhistory.core.errors import RunFailedError, WaitTimeoutError
from runhistory.store.base import HEARTBEAT_TIMEOUT_S

from tests.helpers import python_env
from tests.jobs.support import alive, read_pids, supervisor_pids, wait_for_status, wait_until, write_script


def _submit(
    exp: Experiment, source: Path, code: str, *arguments: object, target: object = "local", tags=None, **config
) -> Run:
    write_script(source, "job.py", code)
    return exp.submit(ScriptRunConfig(source, "job.py", list(arguments), compute_target=target, **config), tags=tags)


def test_a_job_completes_with_its_snapshot_logs_outputs_and_driver_log(
    exp: Experiment, source: Path, here: ComputeTarget, jobs_dir: Path
) -> None:
    (source / "helper.py").write_text("GREETING = 'hello from the snapshot'\n")
    run = _submit(
        exp,
        source,
        """
        import os, sys
        from helper import GREETING
        print(GREETING, sys.argv[1:])
        print("warning: on stderr", file=sys.stderr)
        os.makedirs("logs/nested", exist_ok=True)
        open("logs/nested/progress.txt", "w").write("step 1\\nstep 2\\n")
        os.makedirs("outputs", exist_ok=True)
        open("outputs/model.bin", "wb").write(b"weights")
        """,
        "--epochs", 2,
        target=here,
        tags={"kind": "smoke"},
    )
    assert run.get_details()["runType"] == "job" and run.get_tags() == {"kind": "smoke"}
    details = run.wait_for_completion(timeout=60)
    assert details["status"] == "Completed" and details["target"] == "here"
    assert set(run.get_file_names()) >= {
        "snapshot/job.py", "snapshot/helper.py", "logs/nested/progress.txt", "outputs/model.bin",
        "system_logs/driver.log", "system_logs/supervisor.log",
    }
    artifacts = run.workspace.artifacts
    assert artifacts.read(run.id, "logs/nested/progress.txt") == b"step 1\nstep 2\n"
    assert artifacts.read(run.id, "outputs/model.bin") == b"weights"
    driver = artifacts.read(run.id, "system_logs/driver.log").decode()
    assert "hello from the snapshot ['--epochs', '2']" in driver and "warning: on stderr" in driver
    assert "system_logs/driver.log" in details["logFiles"]
    assert not (jobs_dir / run.id).exists(), "a Completed job's working folder is removed"


def test_a_non_zero_exit_fails_the_run_with_the_exit_code_and_the_end_of_stderr(
    exp: Experiment, source: Path
) -> None:
    run = _submit(exp, source, "import sys\nprint('loading data')\nraise ValueError('bad learning rate 7')\n")
    with pytest.raises(RunFailedError, match=r"(?s)failed: The script job.py exited with code 1 after .* s\. "
                                              r"The end of its stderr:\nTraceback.*ValueError: bad learning rate 7$"):
        run.wait_for_completion(timeout=60)
    error = run.get_details()["error"]
    assert error["exit_code"] == 1 and error["code"] == "UserError"
    assert error["stderr_tail"].splitlines()[-1] == "ValueError: bad learning rate 7"
    assert run.wait_for_completion(raise_on_error=False)["status"] == "Failed"


def test_kill_minus_nine_of_the_script_fails_the_run(exp: Experiment, source: Path, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    run = _submit(exp, source, "import os, sys, time\nopen(sys.argv[1], 'w').write(str(os.getpid()))\ntime.sleep(60)\n",
                  str(pids))
    (script,) = read_pids(pids, 1)
    wait_for_status(run, "Running")
    os.kill(script, signal.SIGKILL)
    wait_for_status(run, "Failed", timeout=10)
    assert "job.py was killed by signal SIGKILL (9)" in run.get_details()["error"]["message"]


def test_kill_minus_nine_of_the_supervisor_fails_the_run_within_ten_seconds(
    exp: Experiment, source: Path, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    run = _submit(exp, source, "import os, sys, time\nopen(sys.argv[1], 'w').write(f'{os.getpid()} {os.getppid()}')\n"
                               "time.sleep(60)\n", str(pids))
    script, supervisor = read_pids(pids, 2)
    assert supervisor_pids(run.id) == [supervisor]
    wait_for_status(run, "Running")
    os.kill(supervisor, signal.SIGKILL)
    killed = time.monotonic()
    wait_for_status(run, "Failed", timeout=10)
    assert HEARTBEAT_TIMEOUT_S - 1.5 < time.monotonic() - killed <= 10
    error = run.get_details()["error"]
    assert error["code"] == "SupervisorLost" and "stopped heartbeating" in error["message"]
    wait_until(lambda: not alive(script), timeout=5, what="the script to die with its supervisor")
    assert [r.status for r in exp.get_runs(status="Running")] == []


def test_cancel_ends_the_whole_process_tree(exp: Experiment, source: Path, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    run = _submit(
        exp,
        source,
        """
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open(sys.argv[1], "w").write(f"{os.getpid()} {os.getppid()} {child.pid}")
        time.sleep(60)
        """,
        str(pids),
    )
    processes = read_pids(pids, 3)
    wait_for_status(run, "Running")
    Run(exp, run.id).cancel()
    assert run.get_status() == "CancelRequested"
    wait_for_status(run, "Canceled", timeout=10)
    assert not any(alive(pid) for pid in processes[:1] + processes[2:]), "the script's tree ended before Canceled"
    wait_until(lambda: not any(alive(pid) for pid in processes), timeout=10, what="every process of the job to end")
    assert supervisor_pids(run.id) == []
    assert run.get_status() == "Canceled"
    assert run.wait_for_completion(timeout=5)["status"] == "Canceled"


def test_max_run_duration_is_enforced(exp: Experiment, source: Path) -> None:
    started = time.monotonic()
    run = _submit(exp, source, "import time\nprint('working', flush=True)\ntime.sleep(60)\n", max_run_duration_seconds=1)
    with pytest.raises(RunFailedError, match=r"ran longer than max_run_duration_seconds=1 and was stopped"):
        run.wait_for_completion(timeout=30)
    assert time.monotonic() - started < 15
    assert run.get_details()["error"]["code"] == "MaxRunDurationExceeded"


def test_the_script_logs_metrics_and_child_runs_into_its_own_run(exp: Experiment, source: Path) -> None:
    run = _submit(
        exp,
        source,
        """
        from runhistory import Run
        run = Run.get_context(allow_offline=False)
        for epoch in range(3):
            run.log("loss", 1.0 / (epoch + 1))
        run.tag("framework", "numpy")
        for alpha in (0.1, 0.2):
            with run.child_run(f"alpha{alpha}") as child:
                child.log("alpha", alpha)
        print("logged into", run.id)
        """,
    )
    assert run.wait_for_completion(timeout=60)["status"] == "Completed"
    assert run.get_metrics() == {"loss": [1.0, 0.5, 1 / 3]}
    assert run.get_tags() == {"framework": "numpy"}
    children = run.get_children()
    assert [(c.display_name, c.status, c.get_metrics()) for c in children] == [
        ("alpha0.1", "Completed", {"alpha": 0.1}),
        ("alpha0.2", "Completed", {"alpha": 0.2}),
    ]
    assert f"logged into {run.id}" in run.workspace.artifacts.read(run.id, "system_logs/driver.log").decode()


def test_logs_reach_the_run_while_it_is_still_running(exp: Experiment, source: Path, tmp_path: Path) -> None:
    release = tmp_path / "release"
    run = _submit(
        exp,
        source,
        """
        import os, sys, time
        from tensorboardX import SummaryWriter
        os.makedirs("logs", exist_ok=True)
        with open("logs/progress.txt", "a") as progress:
            progress.write("epoch 1\\n")
        writer = SummaryWriter("logs/tb", flush_secs=1)  # its flush() does not wait for its queue
        writer.add_scalar("loss", 0.5, 1)
        writer.flush()
        while not os.path.exists(sys.argv[1]):
            time.sleep(0.05)
        with open("logs/progress.txt", "a") as progress:
            progress.write("epoch 2\\n")
        """,
        str(release),
    )
    artifacts = run.workspace.artifacts

    def scalars_in_run_files() -> list[tuple[int, str]]:
        names = [name for name in artifacts.list(run.id, "logs/tb/") if ".tfevents." in name]
        if not names:
            return []
        local = tmp_path / "events"
        local.write_bytes(artifacts.read(run.id, names[0]))
        return [(e.step, v.tag) for e in EventFileLoader(str(local)).Load() for v in e.summary.value]

    assert wait_until(scalars_in_run_files, timeout=30, what="the scalar in the run's files") == [(1, "loss")]
    assert run.get_status() == "Running"
    assert artifacts.read(run.id, "logs/progress.txt") == b"epoch 1\n"
    release.touch()
    assert run.wait_for_completion(timeout=30)["status"] == "Completed"
    assert artifacts.read(run.id, "logs/progress.txt") == b"epoch 1\nepoch 2\n"


def test_show_output_streams_the_driver_log_while_the_job_runs(ws: Workspace, exp: Experiment, source: Path,
                                                               tmp_path: Path) -> None:
    release = tmp_path / "release"
    run = _submit(exp, source, "import os, sys, time\nprint('epoch 1 done')\nwhile not os.path.exists(sys.argv[1]):\n"
                               "    time.sleep(0.05)\nprint('epoch 2 done')\n", str(release))
    watcher = subprocess.Popen(
        [sys.executable, "-c", f"from runhistory import Workspace\n"
                               f"Workspace.from_config({str(tmp_path / 'ws')!r}).get_run({run.id!r})"
                               f".wait_for_completion(show_output=True)"],
        env=python_env(), stdout=subprocess.PIPE, text=True,
    )
    assert watcher.stdout is not None
    lines = [watcher.stdout.readline() for _ in range(2)]
    assert lines == [f"RunId: {run.id}\n", f"Run: unit:{run.number}\n"]
    seen = []
    while "epoch 1 done\n" not in seen:
        seen.append(watcher.stdout.readline())
        assert seen[-1], f"the watcher ended before the job's first line: {seen}"
    assert run.get_status() == "Running", "the first line came before the job ended"
    release.touch()
    rest, _ = watcher.communicate(timeout=60)
    assert watcher.returncode == 0
    assert rest.index("epoch 2 done") < rest.index("Execution Summary") < rest.index("Status: Completed")


def test_two_jobs_at_once_keep_their_files_and_folders_apart(exp: Experiment, source: Path) -> None:
    code = """
        import os, sys, time
        os.makedirs("logs", exist_ok=True)
        os.makedirs("outputs", exist_ok=True)
        for i in range(5):
            with open("logs/progress.txt", "a") as f:
                f.write(f"{sys.argv[1]} {i}\\n")
            time.sleep(0.1)
        open("outputs/who.txt", "w").write(sys.argv[1])
        print(os.getcwd())
        """
    first, second = (_submit(exp, source, code, name) for name in ("first", "second"))
    for run in (first, second):
        assert run.wait_for_completion(timeout=60)["status"] == "Completed"
    artifacts = first.workspace.artifacts
    folders = set()
    for run, name in ((first, "first"), (second, "second")):
        assert artifacts.read(run.id, "logs/progress.txt").decode() == "".join(f"{name} {i}\n" for i in range(5))
        assert artifacts.read(run.id, "outputs/who.txt") == name.encode()
        folders.add(artifacts.read(run.id, "system_logs/driver.log").decode().strip())
    assert len(folders) == 2 and all(Path(folder).is_absolute() for folder in folders)


def test_max_concurrent_runs_queues_the_second_job(ws: Workspace, exp: Experiment, source: Path,
                                                   tmp_path: Path) -> None:
    single = ComputeTarget.create(ws, "single", LocalCompute.provisioning_configuration(max_concurrent_runs=1))
    release = tmp_path / "release"
    code = "import os, sys, time\nwhile not os.path.exists(sys.argv[1]):\n    time.sleep(0.05)\n"
    first = _submit(exp, source, code, str(release), target=single)
    wait_for_status(first, "Running")
    second = _submit(exp, source, code, str(release), target="single")
    waiting = "Queued: single runs 1 jobs at most; waiting for a slot"

    def supervisor_log() -> str:
        names = second.get_file_names()
        return second.workspace.artifacts.read(second.id, "system_logs/supervisor.log").decode() \
            if "system_logs/supervisor.log" in names else ""

    wait_until(lambda: waiting in supervisor_log(), timeout=30, what="the second job to wait for a slot")
    assert (first.get_status(), second.get_status()) == ("Running", "Queued")
    status = single.get_status()
    assert (status.running_runs, status.queued_runs) == (1, 1)
    release.touch()
    for run in (first, second):
        assert run.wait_for_completion(timeout=60)["status"] == "Completed"
    assert second.record.start_time >= first.record.end_time
    assert waiting in supervisor_log()


def test_a_queued_job_can_be_canceled(ws: Workspace, exp: Experiment, source: Path, tmp_path: Path) -> None:
    single = ComputeTarget.create(ws, "single", LocalCompute.provisioning_configuration(max_concurrent_runs=1))
    release = tmp_path / "release"
    code = "import os, sys, time\nwhile not os.path.exists(sys.argv[1]):\n    time.sleep(0.05)\n"
    first = _submit(exp, source, code, str(release), target=single)
    wait_for_status(first, "Running")
    queued = _submit(exp, source, code, str(release), target=single)
    wait_until(lambda: supervisor_pids(queued.id), what="the queued job's supervisor")
    queued.cancel()
    wait_until(lambda: not supervisor_pids(queued.id), timeout=10, what="the queued job's supervisor to leave")
    release.touch()
    assert first.wait_for_completion(timeout=60)["status"] == "Completed"
    assert queued.get_status() == "Canceled" and "system_logs/driver.log" not in queued.get_file_names()


def test_wait_for_completion_can_time_out(exp: Experiment, source: Path) -> None:
    run = _submit(exp, source, "import time\ntime.sleep(60)\n")
    with pytest.raises(WaitTimeoutError, match=f"Run {run.id} is still (Queued|Starting|Running) after 0.5 s of waiting"):
        run.wait_for_completion(timeout=0.5)
    run.cancel()
    wait_until(lambda: not supervisor_pids(run.id), timeout=10, what="the supervisor to leave")

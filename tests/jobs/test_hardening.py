"""Jobs tried as an attacker and a careless user would: links out of the source folder, the
workspace inside it, killed supervisors, cancels at every moment, names from a bad store."""

from __future__ import annotations

import http.server
import inspect
import io
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from runhistory import Experiment, Run, ScriptRunConfig, Workspace
from runhistory.compute import ComputeTarget, LocalCompute
from runhistory.core.errors import JobConfigError, SnapshotLinkError, UnsafeSnapshotNameError
from runhistory.jobs.snapshot import collect_snapshot, download_snapshot

from tests.jobs.support import alive, read_pids, supervisor_pids, wait_for_status, wait_until, write_script


def _submit(exp: Experiment, source: Path, code: str, *arguments: object, target: object = "local") -> Run:
    write_script(source, "job.py", code)
    return exp.submit(ScriptRunConfig(source, "job.py", [str(a) for a in arguments], compute_target=target))


# --- symlinks in the source folder ---


def test_symlinks_that_stay_inside_the_source_folder_are_kept(source: Path) -> None:
    (source / "data").mkdir()
    (source / "data" / "train.csv").write_text("x,y\n")
    (source / "config.yaml").write_text("lr: 0.1\n")
    (source / "current.yaml").symlink_to("config.yaml")
    (source / "dataset").symlink_to("data", target_is_directory=True)
    snapshot = collect_snapshot(source)
    assert [file.name for file in snapshot.files] == [
        "config.yaml", "current.yaml", "data/train.csv", "dataset/train.csv",
    ]
    linked = {file.name: file.path.read_text() for file in snapshot.files}
    assert linked["current.yaml"] == "lr: 0.1\n" and linked["dataset/train.csv"] == "x,y\n"


def test_symlinks_that_point_outside_are_refused_at_submit_naming_each(
    exp: Experiment, source: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    (tmp_path / "elsewhere").mkdir()
    write_script(source, "job.py", "print('hi')\n")
    (source / "x").symlink_to(secret)
    (source / "shared").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(SnapshotLinkError) as raised:
        exp.submit(ScriptRunConfig(source, "job.py"))
    message = str(raised.value)
    assert f"shared -> {tmp_path / 'elsewhere'}" in message and f"x -> {secret}" in message
    assert message.count(".") >= 1 and "\n" not in message
    assert list(exp.get_runs()) == [], "nothing is submitted"


def test_a_symlink_into_the_workspace_is_refused(exp: Experiment, ws: Workspace, source: Path) -> None:
    write_script(source, "job.py", "print('hi')\n")
    (source / "db").symlink_to(ws.local_folders()[0])
    with pytest.raises(SnapshotLinkError, match=r"\(db -> .*\)"):
        exp.submit(ScriptRunConfig(source, "job.py"))


def test_a_symlink_loop_is_one_sentence_naming_the_link(source: Path) -> None:
    write_script(source, "job.py", "print('hi')\n")
    (source / "sub").mkdir()
    (source / "sub" / "up").symlink_to("..", target_is_directory=True)
    with pytest.raises(SnapshotLinkError, match=r"^The symlink sub/up in the source directory .* makes a loop"):
        collect_snapshot(source)
    (source / "sub" / "up").unlink()
    (source / "self").symlink_to("self")
    with pytest.raises(SnapshotLinkError, match=r"^The symlink self in the source directory .* makes a loop .*\.$"):
        collect_snapshot(source)


def test_a_broken_symlink_is_left_out_with_a_warning_naming_it(source: Path) -> None:
    write_script(source, "job.py", "print('hi')\n")
    (source / ".#job.py").symlink_to("user@host.1234")  # an editor's lock file
    with pytest.warns(UserWarning, match=r"leaves out broken symlinks .*\.#job\.py -> user@host\.1234"):
        snapshot = collect_snapshot(source)
    assert [file.name for file in snapshot.files] == ["job.py"]


def test_the_workspace_is_never_part_of_the_snapshot(tmp_path: Path) -> None:
    source = tmp_path / "project"
    write_script(source, "job.py", "print('hi')\n")
    ws = Workspace.create(source / "tracking")  # not named .runhistory: found by what it is
    with Experiment(ws, "unit").start_logging() as other:
        other.upload_file("outputs/model.bin", io.BytesIO(b"weights of another run"))
    run = Experiment(ws, "unit").submit(ScriptRunConfig(source, "job.py"))
    assert run.wait_for_completion(timeout=60)["status"] == "Completed"
    snapshot = [name for name in run.get_file_names() if name.startswith("snapshot/")]
    assert "snapshot/job.py" in snapshot
    assert not [name for name in snapshot if "runhistory.db" in name or "artifacts/" in name], snapshot


# --- the supervisor killed, the whole tree ends ---

_TREE = """
    import os, subprocess, sys, time
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    in_group = subprocess.Popen(sleep)
    own_session = subprocess.Popen(sleep, start_new_session=True)
    # an orphan in a session of its own: its parent exits at once (a daemon's double fork)
    middle = subprocess.Popen([sys.executable, "-c",
        "import subprocess, sys; p = subprocess.Popen(sys.argv[1:], start_new_session=True); print(p.pid)",
        *sleep], stdout=subprocess.PIPE, text=True)
    orphan = int(middle.stdout.readline())
    middle.wait()
    open(sys.argv[1], "w").write(f"{os.getpid()} {os.getppid()} {in_group.pid} {own_session.pid} {orphan}")
    time.sleep(60)
"""


def test_kill_9_of_the_supervisor_ends_the_scripts_whole_tree(
    exp: Experiment, source: Path, here: ComputeTarget, jobs_dir: Path, tmp_path: Path
) -> None:
    pids_file = tmp_path / "pids"
    run = _submit(exp, source, _TREE, pids_file, target=here)
    script, supervisor, *descendants = read_pids(pids_file, 5)
    wait_for_status(run, "Running")
    time.sleep(0.6)  # the watchdog polls the tree every 0.25 s
    assert all(alive(pid) for pid in descendants)
    os.kill(supervisor, signal.SIGKILL)
    wait_until(lambda: not any(alive(pid) for pid in [script, *descendants]), timeout=5,
               what="every process of the job to end with its supervisor")
    wait_until(lambda: not (jobs_dir / run.id).exists(), timeout=5, what="the job's folder to go")


def test_a_script_that_exits_leaves_no_process_behind(exp: Experiment, source: Path, tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    run = _submit(exp, source, _TREE.replace("time.sleep(60)\n", "", 1).rstrip() + "\n", pids_file)
    _script, _supervisor, *descendants = read_pids(pids_file, 5)
    assert run.wait_for_completion(timeout=60)["status"] == "Completed"
    assert not any(alive(pid) for pid in descendants)


# --- cancel ---

_MARKS_START = "import sys\nopen(sys.argv[1], 'w').write('started')\n"


def test_a_job_canceled_while_its_snapshot_uploads_never_starts(
    exp: Experiment, source: Path, here: ComputeTarget, jobs_dir: Path, tmp_path: Path
) -> None:
    files = 600  # the snapshot takes a while to upload: the cancel comes in the middle
    (source / "data").mkdir()
    for index in range(files):
        (source / "data" / f"{index:04d}.txt").write_bytes(b"x" * 1000)
    marker = tmp_path / "started"
    uploaded_when_canceled: list[int] = []

    def cancel_as_soon_as_the_run_exists() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            runs = list(exp.get_runs())
            if runs:
                runs[0].cancel()
                uploaded_when_canceled.append(len(runs[0].workspace.artifacts.list(runs[0].id, "snapshot/")))
                return
            time.sleep(0.005)

    canceler = threading.Thread(target=cancel_as_soon_as_the_run_exists)
    canceler.start()
    run = _submit(exp, source, _MARKS_START, marker, target=here)
    canceler.join()
    assert uploaded_when_canceled and uploaded_when_canceled[0] < files, "the cancel came during the upload"
    assert run.get_status() == "Canceled"
    assert not (jobs_dir / run.id).exists(), "no supervisor was started"
    assert "system_logs/driver.log" not in run.get_file_names() and not marker.exists()


def test_a_job_canceled_before_its_supervisor_starts_the_script_never_starts_it(
    exp: Experiment, source: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    run = _submit(exp, source, _MARKS_START, marker)
    run.cancel()  # the supervisor is still starting up
    assert run.get_status() == "CancelRequested"
    assert wait_for_status(run, "Canceled", timeout=30) == "Canceled"
    wait_until(lambda: not supervisor_pids(run.id), timeout=10, what="the supervisor to leave")
    assert not marker.exists(), "the script never started"
    assert "system_logs/driver.log" not in run.get_file_names()


def test_cancel_of_a_running_job_reads_cancel_requested_until_its_tree_has_ended(
    exp: Experiment, source: Path, tmp_path: Path
) -> None:
    pids_file = tmp_path / "pids"
    stubborn = """
        import os, signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # takes the whole grace period to end
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
        open(sys.argv[1], "w").write(f"{os.getpid()} {child.pid}")
        while True:
            print("still writing", flush=True)
            time.sleep(0.05)
    """
    run = _submit(exp, source, stubborn, pids_file)
    processes = read_pids(pids_file, 2)
    wait_for_status(run, "Running")
    run.cancel()
    assert run.get_status() == "CancelRequested"
    seen = set()
    while (status := run.get_status()) != "Canceled":
        seen.add(status)
        if status != "CancelRequested":
            break
        time.sleep(0.02)
    assert status == "Canceled" and seen == {"CancelRequested"}
    assert not any(alive(pid) for pid in processes), "Canceled only once the script's processes are gone"
    assert run.get_details()["status"] == "Canceled"


def test_cancel_of_an_interactive_run_is_immediate(exp: Experiment) -> None:
    run = exp.start_logging()
    run.cancel()
    assert run.get_status() == "Canceled"


# --- working folders ---


def test_working_folders_go_when_the_job_ends_whatever_the_end(
    exp: Experiment, source: Path, here: ComputeTarget, jobs_dir: Path, tmp_path: Path
) -> None:
    completed = _submit(exp, source, "print('done')\n", target=here)
    failed = _submit(exp, source, "raise SystemExit(3)\n", target=here)
    pids_file = tmp_path / "pids"
    canceled = _submit(exp, source, "import os, sys, time\nopen(sys.argv[1], 'w').write(str(os.getpid()))\n"
                                    "time.sleep(60)\n", pids_file, target=here)
    read_pids(pids_file, 1)
    canceled.cancel()
    for run, status in ((completed, "Completed"), (failed, "Failed"), (canceled, "Canceled")):
        assert run.wait_for_completion(timeout=60, raise_on_error=False)["status"] == status
        assert not (jobs_dir / run.id).exists(), f"the folder of the {status} job is removed"


def test_a_target_told_to_keep_working_folders_keeps_them(ws: Workspace, exp: Experiment, source: Path,
                                                          tmp_path: Path) -> None:
    folders = tmp_path / "kept"
    keeping = ComputeTarget.create(
        ws, "keeping", LocalCompute.provisioning_configuration(working_directory=str(folders), keep_working_folders=True)
    )
    assert keeping.keep_working_folders and not ComputeTarget(ws, "local").keep_working_folders
    run = _submit(exp, source, "raise SystemExit(3)\n", target=keeping)
    assert run.wait_for_completion(timeout=60, raise_on_error=False)["status"] == "Failed"
    assert (folders / run.id / "work" / "job.py").read_text() == "raise SystemExit(3)\n"
    with pytest.raises(JobConfigError, match="keep_working_folders must be True or False"):
        LocalCompute.provisioning_configuration(keep_working_folders="yes")  # type: ignore[arg-type]


# --- names from a store the supervisor cannot trust ---


class _CompromisedServer(http.server.ThreadingHTTPServer):
    """A loopback HTTP server that answers every file listing with a name escaping the snapshot,
    as a compromised runhistory server could; it records the paths asked for."""

    listing = {"snapshot/job.py": 12, "snapshot/../victim.txt": 4}

    def __init__(self) -> None:
        self.asked: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server.asked.append(self.path)
                body = json.dumps(server.listing if "/files?" in self.path else {}).encode()
                self.send_response(200 if "/files?" in self.path else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


def test_a_listing_name_that_escapes_the_working_folder_writes_nothing(tmp_path: Path) -> None:
    from runhistory.client.artifacts import RemoteArtifactStore

    # No store here keeps such a name (SeaweedFS refuses '..' keys), so a server that lies answers.
    server = _CompromisedServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        artifacts = RemoteArtifactStore(f"http://127.0.0.1:{server.server_address[1]}")
        assert "snapshot/../victim.txt" in artifacts.list("job_1", "snapshot/")
        work = tmp_path / "job" / "work"
        work.mkdir(parents=True)
        victim = tmp_path / "job" / "victim.txt"
        victim.write_text("precious")
        with pytest.raises(UnsafeSnapshotNameError, match=r"lists the file 'snapshot/\.\./victim\.txt', which would be "
                                                          r"written outside the job's working folder"):
            download_snapshot(artifacts, "job_1", work)
    finally:
        server.shutdown()
        server.server_close()
    assert victim.read_text() == "precious"
    assert list(work.iterdir()) == [], "no name is written before every name is checked"
    assert all("/files?" in path for path in server.asked), f"only the listing was asked for: {server.asked}"


@pytest.mark.parametrize("name", ["snapshot//etc/x", "snapshot/a/../../x", "snapshot/./x", "snapshot/", "other/x"])
def test_other_names_that_are_not_plain_are_refused(name: str, tmp_path: Path) -> None:
    from runhistory.jobs.snapshot import snapshot_target

    with pytest.raises(UnsafeSnapshotNameError):
        snapshot_target(tmp_path, name, "job_1")


# --- azureml's signatures ---


def test_script_run_config_takes_azureml_positional_order(source: Path) -> None:
    write_script(source, "train.py", "print('hi')\n")
    parameters = list(inspect.signature(ScriptRunConfig).parameters)
    assert parameters[:7] == [
        "source_directory", "script", "arguments", "run_config", "_telemetry_values", "compute_target", "environment",
    ]
    config = ScriptRunConfig(source, "train.py", ["--lr", 0.1], None, None, "gpu", {"SEED": "1"})
    assert (config.arguments, config.target_name, config.environment) == (["--lr", "0.1"], "gpu", {"SEED": "1"})
    with pytest.raises(JobConfigError, match=r"does not support azureml's run_config"):
        ScriptRunConfig(source, "train.py", [], object())


def test_compute_targets_have_azureml_type(ws: Workspace) -> None:
    ComputeTarget.create(ws, "cluster", LocalCompute.provisioning_configuration())
    assert ws.compute_targets["cluster"].type == "AmlCompute"
    assert ws.compute_targets["local"].type == "AmlCompute" and ws.compute_targets["local"].kind == "local"


def test_a_source_folder_inside_the_workspaces_files_is_refused(exp: Experiment, ws: Workspace) -> None:
    inside = ws.local_folders()[-1] / "resubmitted"
    write_script(inside, "job.py", "print('hi')\n")
    with pytest.raises(JobConfigError, match=r"^The source directory .*resubmitted is inside the workspace's own files"):
        exp.submit(ScriptRunConfig(inside, "job.py"))


def test_an_output_name_no_store_keeps_is_left_out_and_the_other_outputs_are_uploaded(
    exp: Experiment, source: Path
) -> None:
    code = (
        "import os\nos.makedirs('outputs', exist_ok=True)\n"
        "open('outputs/a\\\\b.txt', 'w').write('backslash')\n"
        "open('outputs/model.txt', 'w').write('kept')\n"
    )
    run = _submit(exp, source, code)
    assert run.wait_for_completion(timeout=60)["status"] == "Completed"
    assert "outputs/model.txt" in run.get_file_names()
    supervisor_log = exp.workspace.artifacts.read(run.id, "system_logs/supervisor.log").decode()
    assert "Left out outputs/a\\b.txt" in supervisor_log

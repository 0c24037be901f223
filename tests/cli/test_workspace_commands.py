"""``runhistory workspace backup|check``, damaged workspace files on the command line, and reading
commands that create nothing where there is no workspace."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from runhistory import Experiment, Workspace

from tests.cli.support import WIDTH, assert_one_line_error
from tests.helpers import python_env, run_python, start_python
from tests.sdk.test_workspace_files import BAD_FILES, damage_pages, digest, read_everything

CONSOLE_SCRIPT = Path(sys.executable).with_name("runhistory")


def _runhistory(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """The real console script, to the end."""
    return subprocess.run(
        [str(CONSOLE_SCRIPT), *args],
        cwd=cwd,
        env=python_env(COLUMNS=str(WIDTH), **env),
        capture_output=True,
        text=True,
        timeout=180,
    )


WRITER = """
    import sys, time
    from pathlib import Path
    from runhistory import Experiment, Workspace
    ws = Workspace.create({folder!r})
    exp = Experiment(ws, "busy")
    notes = Path({folder!r}).parent / "notes.txt"
    notes.write_bytes(b"n" * 5000)
    deadline = time.monotonic() + 60
    r = 0
    while time.monotonic() < deadline and not Path({stop!r}).exists():
        run = exp.start_logging(f"run{{r}}")
        for i in range(2000):
            run.log("loss", float(i))
        run.upload_file("outputs/notes.txt", notes)
        run.complete()
        r += 1
        if r == 3:
            print("writing", flush=True)
    print(r, flush=True)
    """


def test_backup_while_another_process_writes_is_a_consistent_workspace(tmp_path: Path, isolated: Path) -> None:
    folder, stop = tmp_path / "ws", tmp_path / "stop"
    writer = start_python(WRITER.format(folder=str(folder), stop=str(stop)))
    try:
        assert writer.stdout.readline().strip() == "writing", writer.stderr.read() if writer.poll() is not None else ""
        backed_up = _runhistory("workspace", "backup", str(tmp_path / "backup"), "-w", str(folder), cwd=isolated)
        still_running = writer.poll() is None
    finally:
        stop.touch()
        out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    assert still_running, "the writer ended before the backup did: nothing was tested"
    assert backed_up.returncode == 0, backed_up.stderr
    assert f"to {tmp_path / 'backup'}" in backed_up.stdout and "file(s) of the runs" in backed_up.stdout
    checked = _runhistory("workspace", "check", "-w", str(tmp_path / "backup"), cwd=isolated)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith(f"OK: {tmp_path / 'backup' / 'runhistory.db'} passes SQLite's integrity_check")
    assert sorted(path.name for path in (tmp_path / "backup").iterdir()) == ["artifacts", "config.json", "runhistory.db"]
    copy = Workspace.from_config(tmp_path / "backup")
    runs = read_everything(copy)
    assert 3 <= len(runs) <= int(out.split()[-1]) + 1
    for name, run in runs.items():
        # consistent: every run ended in the copy holds all its points, and its file
        if run["status"] == "Completed":
            assert run["metrics"] == {"loss": [float(i) for i in range(2000)]}, name
    completed = [run for run in copy.experiments["busy"].get_runs() if run.status == "Completed"]
    assert completed and all("outputs/notes.txt" in run.get_file_names() for run in completed[1:])


def test_backup_of_the_database_only(tmp_path: Path, isolated: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    run = Experiment(ws, "e").start_logging()
    run.upload_file("f.txt", __file__)
    run.complete()
    done = _runhistory("workspace", "backup", str(tmp_path / "db-only"), "--no-files", "-w", str(tmp_path / "ws"), cwd=isolated)
    assert done.returncode == 0, done.stderr
    assert "the runs' files were not copied" in done.stdout
    assert sorted(path.name for path in (tmp_path / "db-only").iterdir()) == ["config.json", "runhistory.db"]


def test_backup_never_writes_into_a_folder_that_holds_something(tmp_path: Path, invoke) -> None:
    Workspace.create(tmp_path / "ws")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep")
    assert_one_line_error(invoke("workspace", "backup", str(tmp_path / "full"), "-w", str(tmp_path / "ws")), "not an empty folder")
    assert [path.name for path in (tmp_path / "full").iterdir()] == ["mine.txt"]
    assert_one_line_error(
        invoke("workspace", "backup", str(tmp_path / "ws" / "inside"), "-w", str(tmp_path / "ws")), "inside the workspace"
    )


def test_backup_of_a_postgresql_workspace_says_to_use_pg_dump(postgres_uri: str, invoke) -> None:
    assert_one_line_error(invoke("workspace", "backup", "anywhere", "-w", postgres_uri), "pg_dump")


def test_check_of_a_sound_workspace_is_ok(tmp_path: Path, invoke) -> None:
    ws = Workspace.create(tmp_path / "ws")
    Experiment(ws, "e").start_logging().complete()
    result = invoke("workspace", "check", "-w", str(tmp_path / "ws"))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("OK: ") and "(current)" in result.stdout and "1 run(s)" in result.stdout
    quick = invoke("workspace", "check", "--quick", "-w", str(tmp_path / "ws"))
    assert quick.exit_code == 0 and "quick_check" in quick.stdout


@pytest.mark.parametrize("share", [0.02, 0.3], ids=["few-pages", "many-pages"])
def test_check_of_a_damaged_copy_says_what_is_wrong_and_exits_1(tmp_path: Path, isolated: Path, share: float) -> None:
    run_python(
        f"""
        from runhistory import Experiment, Workspace
        exp = Experiment(Workspace.create({str(tmp_path / "ws")!r}), "e")
        for r in range(3):
            run = exp.start_logging()
            for i in range(10000):
                run.log("loss", i * 0.5)
            run.tag("k", "v" * 3000)
            run.complete()
        """
    )
    done = _runhistory("workspace", "backup", str(tmp_path / "copy"), "-w", str(tmp_path / "ws"), cwd=isolated)
    assert done.returncode == 0, done.stderr
    db_file = tmp_path / "copy" / "runhistory.db"
    damage_pages(db_file, seed=4, share=share)
    before = digest(db_file)
    checked = _runhistory("workspace", "check", "-w", str(tmp_path / "copy"), cwd=isolated)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert checked.stdout.startswith("Damaged: ") and str(db_file) in checked.stdout
    assert "backup" in checked.stdout and "Traceback" not in checked.stdout + checked.stderr
    assert len(checked.stdout.strip().splitlines()) == 1
    assert digest(db_file) == before
    original = _runhistory("workspace", "check", "-w", str(tmp_path / "ws"), cwd=isolated)
    assert original.returncode == 0 and original.stdout.startswith("OK: "), original.stdout


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_a_bad_database_file_is_one_line_on_runs_list_and_check_and_is_left_as_it_is(
    tmp_path: Path, isolated: Path, kind: str
) -> None:
    make, fragment = BAD_FILES[kind]
    make(tmp_path / "ws")
    db_file = tmp_path / "ws" / "runhistory.db"
    before = digest(db_file)
    listed = _runhistory("runs", "list", "-w", str(tmp_path / "ws"), cwd=isolated)
    assert listed.returncode == 1 and listed.stdout == ""
    assert listed.stderr.startswith(f"Error: The workspace database {db_file} cannot be used") and fragment in listed.stderr
    assert len(listed.stderr.strip().splitlines()) == 1, listed.stderr
    checked = _runhistory("workspace", "check", "-w", str(tmp_path / "ws"), cwd=isolated)
    assert checked.returncode == 1 and str(db_file) in checked.stdout + checked.stderr
    assert digest(db_file) == before


# --- reading commands where there is no workspace ---

READING_COMMANDS = {
    "runs-list": ["runs", "list"],
    "runs-show": ["runs", "show", "e:1"],
    "runs-logs": ["runs", "logs", "e:1"],
    "experiments-list": ["experiments", "list"],
    "export": ["export", "e:1", "tb"],
    "tensorboard": ["tensorboard", "e:1", "--port", "0"],
    "workspace-check": ["workspace", "check"],
    "workspace-backup": ["workspace", "backup", "copy"],
}


@pytest.mark.parametrize("args", list(READING_COMMANDS.values()), ids=list(READING_COMMANDS))
def test_reading_commands_in_an_empty_folder_create_nothing_and_say_where_they_looked(
    tmp_path: Path, isolated: Path, invoke, args: list[str]
) -> None:
    before = sorted(tmp_path.rglob("*"))
    line = assert_one_line_error(invoke(*args), "No runhistory workspace found")
    assert sorted(tmp_path.rglob("*")) == before
    assert f"{isolated}, {isolated.parent}," in line and "$RUNHISTORY_TRACKING_URI" in line


def test_a_tracking_uri_pointing_nowhere_is_named_and_nothing_is_created(tmp_path: Path, isolated: Path, invoke) -> None:
    before = sorted(tmp_path.rglob("*"))
    result = invoke("runs", "list", env={"RUNHISTORY_TRACKING_URI": str(tmp_path / "nowhere")})
    assert_one_line_error(result, "$RUNHISTORY_TRACKING_URI", str(tmp_path / "nowhere"))
    assert sorted(tmp_path.rglob("*")) == before


def test_the_console_script_in_an_empty_folder_creates_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    done = _runhistory("runs", "list", cwd=empty)
    assert done.returncode == 1 and done.stderr.startswith("Error: No runhistory workspace found")
    assert list(empty.iterdir()) == []


def test_submit_creates_the_default_workspace(isolated: Path) -> None:
    (isolated / "train.py").write_text("print('trained')\n")
    done = _runhistory("submit", "train.py", "-e", "train", "--wait", cwd=isolated)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (isolated / ".runhistory" / "runhistory.db").is_file()
    listed = _runhistory("runs", "list", cwd=isolated)
    assert listed.returncode == 0 and "Completed" in listed.stdout


def test_runs_show_with_a_number_beyond_int64_is_no_run(populated, invoke) -> None:
    result = invoke("runs", "show", "mnist:99999999999999999999999", "-w", str(populated.path))
    assert_one_line_error(result, "No run 'mnist:99999999999999999999999'")



def test_compact_merges_the_pieces_of_a_run_that_never_ended_and_keeps_every_point(tmp_path: Path, invoke) -> None:
    ws = Workspace.create(tmp_path / "ws")
    run = Experiment(ws, "e").start_logging()
    for step in range(70):  # one flush per step: frames, then chunks folded from them, never the final merge
        run.log("loss", 1.0 / (step + 1))
        run.log("name", f"step {step}")
        run.flush()
    before = run.get_metrics()
    result = invoke("workspace", "compact", "--run", run.id, "-w", str(tmp_path / "ws"))
    assert result.exit_code == 0, result.output
    merged = int(result.stdout.split(":")[-1].split()[0].replace(",", ""))
    assert f"run {run.id}" in result.stdout and merged > 0
    assert run.get_metrics() == before and len(before["loss"]) == 70
    again = invoke("workspace", "compact", "-w", str(tmp_path / "ws"))
    assert again.exit_code == 0 and again.stdout.rstrip().endswith("0 piece(s) merged away.")
    unknown = invoke("workspace", "compact", "--run", "no-such-run", "-w", str(tmp_path / "ws"))
    assert_one_line_error(unknown, "no-such-run")

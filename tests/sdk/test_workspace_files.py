"""The workspace's SQLite file: whole after a script, never replaced, damage told in one sentence;
a workspace is created only by writing, and its azureml-style attributes are strings."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import sqlite3
from pathlib import Path

import pytest

import runhistory
from runhistory import Experiment, Workspace
from runhistory.core.errors import CorruptWorkspaceError, NotFoundError, WorkspaceNotFoundError

from tests.helpers import run_python, start_python

PAGE = 4096


def _script_logging_into(folder: Path, runs: int = 3, points: int = 2000) -> str:
    return f"""
        from runhistory import Experiment, Workspace
        ws = Workspace.create({str(folder)!r})
        exp = Experiment(ws, "kept")
        for r in range({runs}):
            run = exp.start_logging(f"run{{r}}")
            for i in range({points}):
                run.log("loss", 1.0 / (i + 1))
            run.log("note", "done")
            child = run.child_run(f"child{{r}}")
            child.log("depth", r)
            child.complete()
            run.complete()
        """


def read_everything(ws: Workspace) -> dict[str, dict]:
    """Every run of every experiment with its status and metrics."""
    found = {}
    for experiment in ws.experiments.values():
        for run in experiment.get_runs(include_children=True):
            found[run.display_name] = {"status": run.status, "metrics": run.get_metrics()}
    return found


def test_the_db_file_alone_copied_after_a_script_ends_holds_every_run_and_metric(tmp_path: Path) -> None:
    run_python(_script_logging_into(tmp_path / "ws"))
    copy = tmp_path / "copy" / "runhistory.db"
    copy.parent.mkdir()
    shutil.copyfile(tmp_path / "ws" / "runhistory.db", copy)  # the .db alone, as a backup or scp would
    assert not (tmp_path / "ws" / "runhistory.db-wal").exists() or (tmp_path / "ws" / "runhistory.db-wal").stat().st_size == 0
    read = run_python(
        f"""
        import json
        from runhistory import Workspace
        ws = Workspace({'sqlite:///' + str(copy)!r})
        found = {{}}
        for experiment in ws.experiments.values():
            for run in experiment.get_runs(include_children=True):
                found[run.display_name] = {{"status": run.status, "metrics": run.get_metrics()}}
        print(json.dumps(found))
        """
    )
    found = json.loads(read.stdout)
    assert len(found) == 6
    for r in range(3):
        assert found[f"run{r}"]["status"] == found[f"child{r}"]["status"] == "Completed"
        assert found[f"run{r}"]["metrics"] == {"loss": [1.0 / (i + 1) for i in range(2000)], "note": "done"}
        assert found[f"child{r}"]["metrics"] == {"depth": r}


def test_exit_hooks_run_in_order_then_the_last_flush_then_the_checkpoint(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    done = run_python(
        f"""
        from runhistory import Experiment, Workspace
        from runhistory.backends import add_exit_hook
        ws = Workspace.create({str(folder)!r})
        add_exit_hook(lambda: print("first", flush=True))
        def second():
            run.log("logged_in_a_hook", 42)  # buffered: only the sequence's own flush writes it
            print("second", flush=True)
        add_exit_hook(second)  # before the run starts: before the hook that ends the process's runs
        run = Experiment(ws, "hooks").start_logging()
        """,
        RUNHISTORY_FLUSH_INTERVAL="3600",
    )
    assert done.stdout.split() == ["first", "second"]
    copy = tmp_path / "copy.db"
    shutil.copyfile(folder / "runhistory.db", copy)
    with sqlite3.connect(copy) as connection:
        assert connection.execute("SELECT name, count FROM metrics").fetchall() == [("logged_in_a_hook", 1)]


def test_a_failing_exit_hook_is_reported_and_the_sequence_goes_on(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    done = run_python(
        f"""
        from runhistory import Experiment, Workspace
        from runhistory.backends import add_exit_hook
        ws = Workspace.create({str(folder)!r})
        run = Experiment(ws, "hooks").start_logging()
        run.log("kept", 1)
        def broken():
            raise OSError("disk gone")
        add_exit_hook(broken)
        """,
        RUNHISTORY_FLUSH_INTERVAL="3600",
    )
    assert "exit hook" in done.stderr and "disk gone" in done.stderr and "Traceback" not in done.stderr
    copy = tmp_path / "copy.db"
    shutil.copyfile(folder / "runhistory.db", copy)
    with sqlite3.connect(copy) as connection:
        assert connection.execute("SELECT name FROM metrics").fetchall() == [("kept",)]


# --- files that are not a usable workspace database ---


def damage_pages(db_file: Path, seed: int = 9, share: float = 0.3) -> None:
    """Overwrite a share of the pages after the first with random bytes, for real."""
    pages = db_file.stat().st_size // PAGE
    rnd = random.Random(seed)
    with open(db_file, "r+b") as file:
        for page in rnd.sample(range(1, pages), max(1, int((pages - 1) * share))):
            file.seek(page * PAGE)
            file.write(rnd.randbytes(PAGE))


def make_damaged(folder: Path) -> None:
    run_python(_script_logging_into(folder, runs=4, points=20_000))
    damage_pages(folder / "runhistory.db")


def _config_only(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"tracking_uri": ".", "artifact_uri": "artifacts"}))


def make_empty(folder: Path) -> None:
    _config_only(folder)
    (folder / "runhistory.db").write_bytes(b"")


def make_text(folder: Path) -> None:
    _config_only(folder)
    (folder / "runhistory.db").write_text("these are my notes, not a database\n" * 50)


def make_foreign_sqlite(folder: Path) -> None:
    _config_only(folder)
    with sqlite3.connect(folder / "runhistory.db") as connection:
        connection.execute("CREATE TABLE contacts (name TEXT, phone TEXT)")
        connection.execute("INSERT INTO contacts VALUES ('Ada', '123')")
    connection.close()


BAD_FILES = {
    "damaged-pages": (make_damaged, "malformed"),
    "zero-bytes": (make_empty, "the file is empty"),
    "text-file": (make_text, "not a SQLite database"),
    "foreign-sqlite": (make_foreign_sqlite, "without runhistory's tables"),
}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_a_bad_database_file_is_one_sentence_naming_it_and_is_left_as_it_is(tmp_path: Path, kind: str) -> None:
    make, fragment = BAD_FILES[kind]
    folder = tmp_path / "ws"
    make(folder)
    db_file = folder / "runhistory.db"
    before = digest(db_file)
    with pytest.raises(CorruptWorkspaceError) as raised:
        read_everything(Workspace(folder))
    message = str(raised.value)
    assert str(db_file) in message and fragment in message
    assert len(message.splitlines()) == 1 and message.endswith(".")
    assert digest(db_file) == before
    with pytest.raises(CorruptWorkspaceError):  # and again: refused, never replaced by a new one
        read_everything(Workspace.from_config(folder))
    assert digest(db_file) == before


def test_a_damaged_database_found_from_the_working_folder_is_refused_in_the_sdk(isolated: Path) -> None:
    make_empty(isolated / ".runhistory")
    with pytest.raises(CorruptWorkspaceError, match="runhistory.db cannot be used"):
        Workspace.from_config()
    assert (isolated / ".runhistory" / "runhistory.db").stat().st_size == 0


def test_workspaces_created_at_once_by_many_processes_are_one(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    code = f"""
        from runhistory import Experiment, Workspace
        Experiment(Workspace({str(folder)!r}), "e").start_logging().complete()
        """
    children = [start_python(code) for _ in range(4)]
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
    assert len(list(Experiment(Workspace(folder), "e").get_runs())) == 4
    assert sorted(path.name for path in folder.iterdir() if path.name.startswith(".runhistory.db.new")) == []


# --- reading never creates ---


def _listing(root: Path) -> list[Path]:
    return sorted(root.rglob("*"))


def test_from_config_without_create_writes_nothing_and_says_where_it_looked(tmp_path: Path, isolated: Path) -> None:
    before = _listing(tmp_path)
    with pytest.raises(WorkspaceNotFoundError) as raised:
        Workspace.from_config(create=False)
    assert _listing(tmp_path) == before
    message = str(raised.value)
    for folder in [isolated, *isolated.parents]:
        assert str(folder) in message
    assert "$RUNHISTORY_TRACKING_URI" in message
    assert isinstance(raised.value, NotFoundError)


def test_from_config_without_create_names_a_tracking_uri_that_points_nowhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNHISTORY_TRACKING_URI", str(tmp_path / "nowhere"))
    before = _listing(tmp_path)
    with pytest.raises(WorkspaceNotFoundError) as raised:
        Workspace.from_config(create=False)
    assert "$RUNHISTORY_TRACKING_URI" in str(raised.value) and str(tmp_path / "nowhere") in str(raised.value)
    assert _listing(tmp_path) == before


def test_from_config_without_create_opens_a_workspace_that_exists(isolated: Path) -> None:
    Experiment(Workspace.from_config(), "there")
    assert list(Workspace.from_config(create=False).experiments) == ["there"]


def test_a_config_without_its_database_is_not_found_when_reading(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "config.json").write_text(json.dumps({"tracking_uri": "."}))
    with pytest.raises(WorkspaceNotFoundError, match="config.json"):
        Workspace.from_config(tmp_path / "ws", create=False)
    assert sorted(p.name for p in (tmp_path / "ws").iterdir()) == ["config.json"]


# --- what the workspace is made of, and its azureml names ---


def test_local_folders_of_the_embedded_default_is_its_folder(isolated: Path) -> None:
    assert Workspace.from_config().local_folders() == [isolated / ".runhistory"]


def test_local_folders_of_a_database_in_a_project_folder_are_its_files(tmp_path: Path) -> None:
    ws = Workspace(f"sqlite:///{tmp_path / 'project' / 'history.db'}", tmp_path / "files")
    db_file = tmp_path / "project" / "history.db"
    assert ws.local_folders() == [
        db_file,
        *(Path(f"{db_file}{suffix}") for suffix in ("-wal", "-shm", "-journal", ".lock")),
        tmp_path / "files",
    ]
    assert tmp_path / "project" not in ws.local_folders()  # the project's own files may still be uploaded


def test_local_folders_of_postgresql_is_its_artifact_folder(postgres_uri: str, tmp_path: Path) -> None:
    ws = Workspace(postgres_uri, tmp_path / "files")
    assert ws.local_folders() == [tmp_path / "files"]
    assert ws.name == postgres_uri.rsplit("/", 1)[1]
    assert ws.location == runhistory.core.uris.redact_uri(postgres_uri)
    ws.store.close()


def test_azureml_workspace_attributes_are_strings(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "project" / ".runhistory")
    # what Azure's sample notebooks do with them
    line = "Workspace name: " + ws.name + ", Azure region: " + ws.location + ", Subscription id: " + ws.subscription_id + ", Resource group: " + ws.resource_group
    assert line == "Workspace name: project, Azure region: local, Subscription id: , Resource group: "
    assert Workspace.create(tmp_path / "team").name == "team"


def test_version_is_the_package_version() -> None:
    from importlib.metadata import version

    assert isinstance(runhistory.VERSION, str)
    assert runhistory.VERSION == runhistory.__version__ == version("runhistory")
    assert "VERSION" in runhistory.__all__


@pytest.mark.parametrize("number", ["99999999999999999999999", "9223372036854775808", "0", "-1", "٣", "9" * 5000])
def test_a_run_number_no_store_can_hold_is_no_run(ws: Workspace, number: str) -> None:
    Experiment(ws, "files").start_logging().complete()
    with pytest.raises(NotFoundError, match=r"^No run 'files:"):
        ws.get_run(f"files:{number}")
    assert ws.get_run("files:1").number == 1


"""Workspace discovery, creation and the embedded default."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from runhistory import Experiment, Workspace
from runhistory.core.errors import NotFoundError, RunHistoryError, SchemaVersionError


def test_from_config_creates_the_embedded_default_on_first_use(isolated: Path) -> None:
    ws = Workspace.from_config()
    assert (isolated / ".runhistory" / "runhistory.db").is_file()
    assert (isolated / ".runhistory" / "config.json").is_file()
    assert ws.tracking_uri == f"sqlite:///{isolated / '.runhistory' / 'runhistory.db'}"
    assert ws.artifact_uri == str(isolated / ".runhistory" / "artifacts")


def test_from_config_finds_the_config_in_a_parent_folder(isolated: Path) -> None:
    Experiment(Workspace.from_config(), "found-again")
    deeper = isolated / "a" / "b"
    deeper.mkdir(parents=True)
    import os

    os.chdir(deeper)
    assert "found-again" in Workspace.from_config().experiments
    assert not (deeper / ".runhistory").exists()


def test_from_config_reads_a_config_json_in_the_folder_itself(tmp_path: Path, isolated: Path) -> None:
    elsewhere = tmp_path / "store-elsewhere"
    (isolated / "config.json").write_text(json.dumps({"tracking_uri": str(elsewhere)}))
    assert Workspace.from_config().tracking_uri == f"sqlite:///{elsewhere / 'runhistory.db'}"


def test_a_foreign_config_json_is_ignored(isolated: Path) -> None:
    (isolated / "config.json").write_text(json.dumps({"something": "else"}))
    ws = Workspace.from_config()
    assert ws.tracking_uri.endswith(".runhistory/runhistory.db")


def test_environment_variable_overrides_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Workspace.from_config()
    monkeypatch.setenv("RUNHISTORY_TRACKING_URI", f"sqlite:///{tmp_path / 'env.db'}")
    ws = Workspace.from_config()
    assert ws.tracking_uri == f"sqlite:///{tmp_path / 'env.db'}"
    assert ws.artifact_uri == str(tmp_path / "artifacts")


def test_create_and_reopen_by_path(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "team")
    Experiment(ws, "kept")
    again = Workspace.from_config(tmp_path / "team")
    assert again == ws
    assert list(again.experiments) == ["kept"]
    assert isinstance(again.experiments["kept"], Experiment)


def test_from_config_with_a_path_that_has_no_config(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="No runhistory config.json"):
        Workspace.from_config(tmp_path / "nothing-here")


def test_create_on_a_file_is_a_clear_error(tmp_path: Path) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(RunHistoryError, match="it is a file"):
        Workspace.create(a_file)


def test_an_unreachable_scheme_is_a_clear_error() -> None:
    with pytest.raises(RunHistoryError, match="cannot reach"):
        Workspace("ftp://example/x")


def test_a_workspace_written_by_a_newer_schema_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "future"
    Experiment(Workspace.create(folder), "old-data")
    db = sqlite3.connect(folder / "runhistory.db")
    db.execute("UPDATE alembic_version SET version_num = '9999_future'")
    db.commit()
    db.close()
    from runhistory import backends

    backends._opened.clear()  # a new process would open the file afresh
    with pytest.raises(SchemaVersionError, match="newer runhistory"):
        Workspace.create(folder)
    db = sqlite3.connect(folder / "runhistory.db")
    assert db.execute("SELECT name FROM experiments").fetchall() == [("old-data",)]
    db.close()


@pytest.mark.both_stores
def test_get_run_by_id_and_by_experiment_number(ws: Workspace) -> None:
    exp = Experiment(ws, "lookup")
    first = exp.start_logging()
    second = exp.start_logging()
    assert ws.get_run(first.id) == first
    assert ws.get_run("lookup:2") == second
    with pytest.raises(NotFoundError, match="No run 'lookup:3'"):
        ws.get_run("lookup:3")
    with pytest.raises(NotFoundError, match="No run 'nope'"):
        ws.get_run("nope")

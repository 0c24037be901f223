"""``runhistory workspace ...``: back up an embedded workspace, and check its database file."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import click

from runhistory.core.uris import ARTIFACTS_FOLDER_NAME, DB_FILE_NAME, HTTP_SCHEMES, default_artifact_uri, normalize_tracking_uri
from runhistory.cli.common import (
    chosen_workspace_ref,
    locate_workspace_ref,
    make_console,
    resolve_run,
    workspace_option,
    workspace_ref_option,
)
from runhistory.core.errors import CorruptWorkspaceError, RunHistoryError, WorkspaceNotFoundError
from runhistory.store.sql.engine import (
    busy_timeout,
    head_revision,
    known_revisions,
    refuse_unless_runhistory_sqlite,
)
from runhistory.core.uris import redact_uri
from runhistory.workspace import CONFIG_FILE, WorkspaceLocation, locate_workspace

# How many of integrity_check's messages a verdict quotes, and how many it collects at most.
PROBLEMS_SHOWN = 3
MAX_PROBLEMS = 100


@dataclass(frozen=True)
class Verdict:
    """What ``workspace check`` found: ``ok`` and one sentence."""

    ok: bool
    message: str
    experiments: int = 0
    runs: int = 0


@click.group("workspace")
def workspace_group() -> None:
    """The workspace itself: back it up, check its database.

    \b
    Examples:
      runhistory workspace check
      runhistory workspace backup ~/backups/mnist
      runhistory workspace compact
    """


def _location(workspace_ref: str | None) -> WorkspaceLocation:
    """Where the workspace is (found as every command finds it), without opening it."""
    return locate_workspace_ref(chosen_workspace_ref(workspace_ref)) or locate_workspace()


def _sqlite_file(location: WorkspaceLocation, verb: str) -> Path:
    """The database file of an embedded workspace; a clear error for PostgreSQL or a server."""
    tracking = normalize_tracking_uri(location.tracking_uri)
    if tracking.startswith(HTTP_SCHEMES):
        raise RunHistoryError(
            f"The workspace at {tracking} is a runhistory server: {verb} it on the server's machine "
            f"(runhistory workspace {verb} -w STORE_URI)."
        )
    if tracking.startswith("postgresql://"):
        files = location.artifact_uri or default_artifact_uri(tracking)
        tool = "pg_dump --format=custom" if verb == "backup" else "PostgreSQL's own tools (amcheck, pg_dump)"
        raise RunHistoryError(
            f"The workspace at {redact_uri(tracking)} is a PostgreSQL database: {verb} it with {tool} "
            f"(its runs' files are in {files}, copy or check them too)."
        )
    db_file = Path(tracking[len("sqlite:///") :])
    if not db_file.is_file():
        raise WorkspaceNotFoundError(f"No runhistory database at {db_file} (the workspace of {location.source}).")
    return db_file


def _connect(db_file: Path) -> sqlite3.Connection:
    # read-write without runhistory's pragmas: SQLite may recover a WAL, nothing else is written
    return sqlite3.connect(f"file:{quote(str(db_file))}?mode=rw", uri=True, timeout=busy_timeout())


@workspace_group.command("check", short_help="Check the database file: integrity and schema version.")
@click.option("--quick", is_flag=True, help="SQLite's quick_check instead of the full integrity_check (faster, fewer checks).")
@workspace_ref_option
def check_command(quick: bool, workspace_ref: str | None) -> None:
    """Check the workspace's database file: SQLite's integrity check and the schema version.

    Prints "OK: ..." and exits 0, or says what is wrong and what to do, and exits 1.

    \b
    Examples:
      runhistory workspace check
      runhistory workspace check --quick -w ~/projects/mnist
    """
    verdict = check_sqlite(_sqlite_file(_location(workspace_ref), "check"), quick=quick)
    make_console().print(verdict.message, markup=False, soft_wrap=True)
    if not verdict.ok:
        raise SystemExit(1)


def check_sqlite(db_file: Path, *, quick: bool = False) -> Verdict:
    """The verdict on a workspace database file (read only)."""
    advice = "restore it from a backup (`runhistory workspace backup DEST` makes one)"
    try:
        refuse_unless_runhistory_sqlite(db_file)
        connection = _connect(db_file)
        try:
            pragma = "quick_check" if quick else "integrity_check"
            # one row may hold several lines, headed by "*** in database main ***"
            rows = connection.execute(f"PRAGMA {pragma}({MAX_PROBLEMS})").fetchall()
            problems = [line for row in rows for line in str(row[0]).splitlines() if line and not line.startswith("***")]
            problems += [f"a broken reference in table {row[0]}" for row in connection.execute("PRAGMA foreign_key_check")]
            revision = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            counts = _counts(connection) if problems in ([], ["ok"]) else None
        finally:
            connection.close()
    except CorruptWorkspaceError as exc:
        return Verdict(False, f"Damaged: {exc}")
    except sqlite3.DatabaseError as exc:
        return Verdict(False, f"Damaged: {db_file} cannot be read ({exc}); {advice}.")
    problems = [problem for problem in problems if problem != "ok"]
    if problems:
        quoted = "; ".join(problems[:PROBLEMS_SHOWN])
        return Verdict(
            False,
            f"Damaged: {db_file} fails SQLite's {pragma} with {_count(problems)} problem(s) ({quoted}); {advice}, "
            f"or salvage what is readable with `sqlite3 {db_file} .recover`.",
        )
    return _schema_verdict(db_file, revision[0] if revision else None, counts or (0, 0), pragma)


def _count(problems: list[str]) -> str:
    return f"{MAX_PROBLEMS} or more" if len(problems) >= MAX_PROBLEMS else str(len(problems))


def _counts(connection: sqlite3.Connection) -> tuple[int, int]:
    experiments = connection.execute("SELECT count(*) FROM experiments").fetchone()[0]
    runs = connection.execute("SELECT count(*) FROM runs").fetchone()[0]
    return experiments, runs


def _schema_verdict(db_file: Path, revision: str | None, counts: tuple[int, int], pragma: str) -> Verdict:
    head = head_revision()
    if revision is None:
        return Verdict(False, f"Damaged: {db_file} has no schema revision (its alembic_version table is empty); restore it from a backup.")
    if revision not in known_revisions():
        return Verdict(
            False,
            f"Newer: {db_file} has schema revision {revision!r}, written by a newer runhistory than this one "
            f"(newest known: {head!r}); upgrade runhistory to use it.",
        )
    schema = f"schema revision {revision!r}" + (
        " (current)" if revision == head else f" (upgraded to {head!r} when next opened)"
    )
    experiments, runs = counts
    return Verdict(
        True,
        f"OK: {db_file} passes SQLite's {pragma}; {schema}; {experiments} experiment(s), {runs} run(s).",
        experiments,
        runs,
    )


@workspace_group.command("compact", short_help="Merge the small stored pieces of metric series into few large ones.")
@click.option("--run", "run_ref", metavar="RUN", default=None, help="Only this run (an id or EXPERIMENT:NUMBER).")
@workspace_option
def compact_command(run_ref: str | None, workspace) -> None:
    """Merge the pieces that metric series were flushed in into few large chunks, so that they read fast.

    The store does this by itself, in the background while a run logs and fully when it ends;
    this command is for runs that never ended (their process was killed) and for runs logged
    before the store compacted (schema revisions before 0007). It is safe while others read and write: each merge is one
    short transaction. A server's store compacts itself: run the command on its database.

    \b
    Examples:
      runhistory workspace compact
      runhistory workspace compact --run mnist:3 -w ~/mnist
    """
    run_id = None if run_ref is None else resolve_run(workspace, run_ref).id
    merged = workspace.store.compact_metrics(run_id)
    where = f"run {run_id}" if run_id else redact_uri(workspace.tracking_uri)
    make_console().print(f"Compacted the metric series of {where}: {merged:,} piece(s) merged away.", markup=False, soft_wrap=True)


@workspace_group.command("backup", short_help="Copy the workspace into a new folder, safely while it is in use.")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--no-files", is_flag=True, help="Copy the database only, not the runs' files.")
@workspace_ref_option
def backup_command(dest: Path, no_files: bool, workspace_ref: str | None) -> None:
    """Copy the workspace into DEST, a new folder, while others may go on writing to it.

    The database is copied with SQLite's online backup (a consistent snapshot), the runs'
    files (a local artifact folder) beside it; DEST is then a workspace of its own
    (`runhistory -w DEST runs list`). To restore, stop every process using the workspace and
    copy DEST's runhistory.db (and artifacts/) back. A PostgreSQL workspace is backed up with pg_dump.

    \b
    Examples:
      runhistory workspace backup ~/backups/mnist-2026-06-01
      runhistory workspace backup --no-files /mnt/db-only -w ~/mnist
    """
    location = _location(workspace_ref)
    db_file = _sqlite_file(location, "backup")
    tracking = normalize_tracking_uri(location.tracking_uri)
    artifacts = location.artifact_uri or default_artifact_uri(tracking)
    if "://" not in artifacts:
        artifacts = str(Path(artifacts).expanduser().resolve())
    dest = dest.expanduser().resolve()
    _check_destination(dest, db_file, artifacts)
    dest.mkdir(parents=True, exist_ok=True)
    backup_sqlite(db_file, dest / DB_FILE_NAME)
    (dest / CONFIG_FILE).write_text(
        json.dumps({"tracking_uri": ".", "artifact_uri": ARTIFACTS_FOLDER_NAME}, indent=2) + "\n"
    )
    console = make_console()
    verdict = check_sqlite(dest / DB_FILE_NAME, quick=True)
    if not verdict.ok:
        raise RunHistoryError(f"The copy {dest / DB_FILE_NAME} of {db_file} does not pass a check: {verdict.message}")
    if no_files:
        files = f"the runs' files were not copied (they are in {artifacts})"
    elif "://" in artifacts:
        files = f"the runs' files stay in {redact_uri(artifacts)}: copy them with that store's tools"
    else:
        count, size = copy_files(Path(artifacts), dest / ARTIFACTS_FOLDER_NAME)
        files = f"{count} file(s) of the runs ({size / 1e6:.1f} MB) were copied"
    console.print(
        f"Backed up {db_file} to {dest} ({verdict.experiments} experiment(s), {verdict.runs} run(s)); {files}. "
        f"Open the copy with `runhistory -w {shlex.quote(str(dest))} runs list`.",
        markup=False,
        soft_wrap=True,
    )


def _check_destination(dest: Path, db_file: Path, artifacts: str) -> None:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise RunHistoryError(f"Cannot back up into {dest}: it exists and is not an empty folder; give a new folder.")
    inside = [db_file.parent] + ([Path(artifacts)] if "://" not in artifacts else [])
    if any(dest == folder or dest.is_relative_to(folder) for folder in inside):
        raise RunHistoryError(f"Cannot back up into {dest}: it is inside the workspace itself; give a folder outside it.")


def backup_sqlite(db_file: Path, copy: Path) -> None:
    """Copy a SQLite database with SQLite's online backup: one consistent snapshot, taken while
    other processes go on writing; the copy is a single file (no -wal) that holds all of it."""
    refuse_unless_runhistory_sqlite(db_file)
    partial = copy.with_name(f".{copy.name}.partial")
    source = _connect(db_file)
    try:
        target = sqlite3.connect(partial)
        try:
            source.backup(target)  # all pages in one step: one read transaction, one snapshot
            target.execute("PRAGMA journal_mode=DELETE")  # the copy stands alone until runhistory opens it
        finally:
            target.close()
    except sqlite3.DatabaseError as exc:
        partial.unlink(missing_ok=True)
        raise RunHistoryError(f"Could not back up {db_file}: {exc}; run `runhistory workspace check`.") from exc
    finally:
        source.close()
    os.replace(partial, copy)


def copy_files(source: Path, target: Path) -> tuple[int, int]:
    """Copy a folder of run files; files that vanish meanwhile are skipped. Returns (count, bytes)."""
    count = size = 0
    if not source.is_dir():
        return count, size
    for folder, subfolders, names in os.walk(source):
        relative = Path(folder).relative_to(source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        subfolders.sort()
        for name in sorted(names):
            try:
                shutil.copy2(Path(folder, name), target / relative / name, follow_symlinks=False)
            except FileNotFoundError:  # a temporary file renamed, or a file deleted, during the copy
                continue
            count += 1
            size += (target / relative / name).lstat().st_size
    return count, size

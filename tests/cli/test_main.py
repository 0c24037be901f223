"""The root command: --version, --help, finding the workspace, one-line errors, real processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from runhistory import Experiment, Workspace, __version__

from tests.cli.support import WIDTH, assert_fits, assert_one_line_error, populate, row_of
from tests.helpers import python_env

CONSOLE_SCRIPT = Path(sys.executable).with_name("runhistory")


def test_version(invoke):
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"runhistory, version {__version__}"


def test_help_lists_the_command_groups_and_fits(invoke):
    result = invoke("--help")
    assert result.exit_code == 0
    assert "experiments" in result.stdout and "runs" in result.stdout
    assert_fits(result.stdout)


@pytest.mark.parametrize(
    "args", [["experiments", "list"], ["runs", "list"], ["runs", "show"]], ids=lambda args: "-".join(args)
)
def test_every_subcommand_takes_workspace(invoke, args):
    result = invoke(*args, "--help")
    assert "--workspace" in result.stdout
    assert_fits(result.stdout)


# --- finding the workspace ---


def _experiment_names(invoke, *workspace_args: str, env: dict[str, str | None] | None = None) -> list[str]:
    result = invoke("experiments", "list", *workspace_args, env=env)
    assert result.exit_code == 0, result.output
    if result.stdout.startswith("No experiments in the workspace at "):
        return []
    lines = result.stdout.splitlines()[2:]  # after the header and its rule
    return [line.split()[0] for line in lines if line.strip()]


@pytest.fixture
def two_workspaces(tmp_path: Path) -> tuple[Path, Path]:
    """Workspace ``one`` (experiment ``alpha``) and ``two`` (experiment ``beta``)."""
    Experiment(Workspace.create(tmp_path / "one"), "alpha")
    Experiment(Workspace.create(tmp_path / "two"), "beta")
    return tmp_path / "one", tmp_path / "two"


def test_workspace_as_folder_config_file_and_sqlite_uri(two_workspaces, invoke):
    one, _ = two_workspaces
    assert _experiment_names(invoke, "--workspace", str(one)) == ["alpha"]
    assert _experiment_names(invoke, "-w", str(one / "config.json")) == ["alpha"]
    assert _experiment_names(invoke, "-w", f"sqlite:///{one / 'runhistory.db'}") == ["alpha"]


def test_workspace_as_a_project_folder_holding_dot_runhistory(tmp_path, invoke):
    Experiment(Workspace.create(tmp_path / "project" / ".runhistory"), "gamma")
    assert _experiment_names(invoke, "-w", str(tmp_path / "project")) == ["gamma"]


def test_workspace_on_the_root_command_is_the_default_of_subcommands(two_workspaces, invoke):
    one, two = two_workspaces
    assert_one_line_error(invoke("experiments", "list"), "No runhistory workspace found")  # none in the cwd
    result = invoke("--workspace", str(one), "experiments", "list")
    assert row_of(result.stdout, "alpha")
    result = invoke("--workspace", str(one), "experiments", "list", "--workspace", str(two))
    assert row_of(result.stdout, "beta") and "alpha" not in result.stdout


def test_without_the_option_the_environment_names_the_workspace(two_workspaces, invoke):
    one, two = two_workspaces
    env = {"RUNHISTORY_TRACKING_URI": str(two)}
    assert _experiment_names(invoke, env=env) == ["beta"]
    assert _experiment_names(invoke, "-w", str(one), env=env) == ["alpha"]  # the option wins


def test_without_the_option_the_nearest_config_is_used(isolated, invoke):
    Experiment(Workspace.create(isolated / ".runhistory"), "delta")
    (isolated / "sub").mkdir()
    assert _experiment_names(invoke) == ["delta"]


@pytest.mark.parametrize(
    "make_ref, fragment",
    [
        (lambda tmp: _write(tmp / "notes.txt", "not json"), "is not a runhistory config"),
        (lambda tmp: _write(tmp / "config.json", '{"other": 1}'), "is not a runhistory config"),
        (lambda tmp: str(tmp / "missing"), "no such file or folder"),
        (lambda tmp: _mkdir(tmp / "plain"), "holds no config.json, .runhistory/ or runhistory.db"),
        (lambda tmp: f"sqlite:///{tmp / 'missing.db'}", "No runhistory database at"),
        (lambda tmp: f"sqlite:///{_write(tmp / 'junk.db', 'junk' * 100)}", "is not a SQLite database"),
        (lambda tmp: "ftp://example.org/ws", "cannot reach yet"),  # http(s):// is a runhistory server
    ],
    ids=["text-file", "json-file", "missing", "plain-folder", "missing-db", "not-a-db", "ftp"],
)
def test_a_bad_workspace_is_a_one_line_error_and_creates_nothing(tmp_path, invoke, make_ref, fragment):
    ref = make_ref(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    assert_one_line_error(invoke("runs", "list", "--workspace", ref), fragment)
    assert sorted(tmp_path.rglob("*")) == before


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _mkdir(path: Path) -> str:
    path.mkdir()
    return str(path)


# --- usage errors ---


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["nope"], "No such command 'nope'. See 'runhistory --help'."),
        (["--bogus"], "No such option '--bogus'"),
        (["runs", "list", "--bogus"], "See 'runhistory runs list --help'."),
        (["runs", "list", "--limit", "many"], "'many' is not a valid integer"),
    ],
)
def test_usage_errors_are_one_line_with_exit_1(invoke, args, fragment):
    assert_one_line_error(invoke(*args), fragment)


def test_a_bare_group_prints_its_help(invoke):
    result = invoke("runs")
    assert "Usage:" in result.output and "show" in result.output


# --- real processes ---


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=cwd, env=python_env(COLUMNS=str(WIDTH)), capture_output=True, text=True, timeout=120
    )


def test_the_console_script_lists_and_shows_runs(tmp_path, isolated):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    populated = populate(tmp_path / "ws", notes)
    assert CONSOLE_SCRIPT.is_file(), f"{CONSOLE_SCRIPT} is not installed (pip install -e .)"
    listed = _run([str(CONSOLE_SCRIPT), "runs", "list", "-w", str(populated.path)], isolated)
    assert listed.returncode == 0, listed.stderr
    assert row_of(listed.stdout, "cifar")[1:4] == ["1", "long-job", "Running"]
    assert_fits(listed.stdout)
    shown = _run([str(CONSOLE_SCRIPT), "runs", "show", "mnist:1", "-w", str(populated.path)], isolated)
    assert shown.returncode == 0, shown.stderr
    assert row_of(shown.stdout, "loss") == ["loss", "scalar", "5", "0.2"]
    assert row_of(shown.stdout, "outputs/notes.txt") == ["outputs/notes.txt", "5", "B"]
    assert "\x1b[" not in shown.stdout  # no colour codes when not on a terminal
    assert_fits(shown.stdout)


def test_python_dash_m_reports_an_unknown_run_on_one_line(tmp_path, isolated):
    Workspace.create(tmp_path / "ws")
    command = [sys.executable, "-m", "runhistory.cli.main", "runs", "show", "nope", "-w", str(tmp_path / "ws")]
    done = _run(command, isolated)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("Error: No run 'nope' in the workspace at sqlite:///")
    assert len(done.stderr.strip().splitlines()) == 1


def test_python_dash_m_version(isolated):
    done = _run([sys.executable, "-m", "runhistory.cli.main", "--version"], isolated)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"runhistory, version {__version__}"

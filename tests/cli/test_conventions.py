"""What every command does alike: --workspace, --output on list and show commands, an example in --help."""

from __future__ import annotations

import sys

import click
import pytest

from runhistory.cli.main import cli

from tests.cli.support import assert_fits, assert_one_line_error


def _commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    """Every command under ``group`` (groups too), with its path of names."""
    found = []
    for name, command in sorted(group.commands.items()):
        found.append(((*path, name), command))
        if isinstance(command, click.Group):
            found += _commands(command, (*path, name))
    return found


ALL_COMMANDS = _commands()
# server, login, sync and server token belong to cli/server.py, which follows its own conventions.
OWN_COMMANDS = [(path, command) for path, command in ALL_COMMANDS if path[0] not in ("server", "login", "sync")]
LIST_AND_SHOW = [("experiments", "list"), ("runs", "list"), ("runs", "show")]


def _params(command: click.Command) -> set[str]:
    return {option for param in command.params for option in getattr(param, "opts", [])}


@pytest.mark.parametrize("path, command", OWN_COMMANDS, ids=lambda value: "-".join(value) if isinstance(value, tuple) else "")
def test_every_command_has_an_example_in_its_help_that_fits(invoke, path, command):
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Example" in result.stdout, result.stdout
    example_lines = result.stdout.split("Example", 1)[1].splitlines()[1:]
    assert any(line.strip().startswith("runhistory ") for line in example_lines), result.stdout
    assert_fits(result.stdout)


@pytest.mark.parametrize(
    "path, command",
    [(path, command) for path, command in OWN_COMMANDS if not isinstance(command, click.Group)],
    ids=lambda value: "-".join(value) if isinstance(value, tuple) else "",
)
def test_every_command_that_opens_a_workspace_takes_workspace(path, command):
    assert "--workspace" in _params(command) and "-w" in _params(command), path


@pytest.mark.parametrize("path", LIST_AND_SHOW, ids="-".join)
def test_every_list_and_show_command_takes_output(invoke, path):
    command = dict(ALL_COMMANDS)[path]
    assert {"--output", "-o"} <= _params(command)
    result = invoke(*path, "--help")
    assert "table|json|csv" in result.stdout


@pytest.mark.parametrize("path", LIST_AND_SHOW, ids="-".join)
def test_an_unknown_output_format_is_a_one_line_error(populated, invoke, path):
    args = [*path, *(["mnist:1"] if path[-1] == "show" else []), "-o", "yaml", "-w", str(populated.path)]
    assert_one_line_error(invoke(*args), "'yaml'")


def test_a_postgresql_workspace_without_psycopg_names_the_pip_command(monkeypatch, invoke):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the [postgres] extra were not installed
    result = invoke("runs", "list", "-w", "postgresql://someone@127.0.0.1:9/nowhere")
    assert_one_line_error(result, "PostgreSQL store", "pip install 'runhistory[postgres]'")

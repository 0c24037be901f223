"""The ``runhistory`` command: the root group, with every command group registered on it."""

from __future__ import annotations

import click

from runhistory.core.version import __version__
from runhistory.cli.common import WORKSPACE_HELP, RunHistoryGroup, remember_root_workspace
from runhistory.cli.compute import compute_group
from runhistory.cli.experiments import experiments_group
from runhistory.cli.imports import import_group
from runhistory.cli.jobs import submit_command
from runhistory.cli.runs import runs_group
from runhistory.cli.server import login_command, server_group, sync_command
from runhistory.cli.tensorboard import export_command, tensorboard_command
from runhistory.cli.ui import ui_command
from runhistory.cli.workspace import workspace_group


@click.group("runhistory", cls=RunHistoryGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="runhistory")
@click.option(
    "--workspace",
    "-w",
    metavar="PATH|URI",
    expose_value=False,
    is_eager=True,
    callback=remember_root_workspace,
    help=WORKSPACE_HELP + " Every subcommand also takes it.",
)
def cli() -> None:
    """Experiment run history with TensorBoard built in.

    \b
    Examples:
      runhistory runs list
      runhistory -w ~/projects/mnist runs show mnist:3 -o json
      runhistory tensorboard -e mnist
    """


cli.add_command(experiments_group)
cli.add_command(runs_group)
cli.add_command(export_command)
cli.add_command(tensorboard_command)
cli.add_command(submit_command)
cli.add_command(server_group)
cli.add_command(login_command)
cli.add_command(sync_command)
cli.add_command(workspace_group)
cli.add_command(compute_group)
cli.add_command(import_group)
cli.add_command(ui_command)


if __name__ == "__main__":
    cli(prog_name="runhistory")

"""``runhistory submit``: run a script as a job from a shell."""

from __future__ import annotations

from pathlib import Path

import click

from runhistory.cli.common import workspace_option
from runhistory.core.errors import RunHistoryError
from runhistory.experiment import Experiment
from runhistory.jobs.config import LOCAL_TARGET, ScriptRunConfig
from runhistory.store.base import RunStatus
from runhistory.workspace import Workspace


@click.command(
    "submit",
    context_settings={"ignore_unknown_options": True},
    epilog="Options this command does not know go to the script. To pass the script an option this "
    "command also has (say --target), put the script and its arguments after '--': "
    "runhistory submit -e mnist -- train.py --target 3",
)
@click.argument("script", metavar="SCRIPT")
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED, metavar="[ARGS]...")
@click.option("--experiment", "-e", "experiment_name", required=True, metavar="NAME", help="The experiment of the run.")
@click.option(
    "--source-dir",
    "-s",
    metavar="DIR",
    default=".",
    show_default=True,
    help="The folder to snapshot and run in (SCRIPT is a path in it, or from here into it).",
)
@click.option("--target", "-t", metavar="NAME", default=LOCAL_TARGET, show_default=True, help="The compute target.")
@click.option("--wait", is_flag=True, help="Stream the job's output until it ends; exit 1 unless it Completed.")
@workspace_option(create=True)
def submit_command(
    workspace: Workspace,
    script: str,
    arguments: tuple[str, ...],
    experiment_name: str,
    source_dir: str,
    target: str,
    wait: bool,
) -> None:
    """Run SCRIPT with ARGS as a job on a compute target.

    The source folder is snapshotted into the run's files, then the job starts; with --wait
    its output streams here until it ends.

    \b
    Examples:
      runhistory submit -e mnist train.py --epochs 3
      runhistory submit -e mnist --wait -s src/ train.py
    """
    config = ScriptRunConfig(source_dir, _script_path(script, Path(source_dir)), list(arguments), compute_target=target)
    run = Experiment(workspace, experiment_name).submit(config)
    ref = f"{experiment_name}:{run.number}"
    click.echo(f"Submitted {ref} (run {run.id}) to compute target {target!r}.")
    if not wait:
        click.echo(f"Follow its output with: runhistory runs logs {ref} --follow")
        return
    details = run.wait_for_completion(show_output=True)
    if details["status"] != RunStatus.COMPLETED:
        raise RunHistoryError(f"Run {ref} ended {details['status']}.")


def _script_path(script: str, source_dir: Path) -> str:
    """SCRIPT as given when it is a path in the source folder; from here when that is where it is."""
    here = Path(script).expanduser()
    if not (source_dir / here).is_file() and here.is_file():
        return str(here.resolve())
    return script

"""``runhistory export`` and ``runhistory tensorboard``: run history in the real TensorBoard."""

from __future__ import annotations

import contextlib
import signal
import time
from pathlib import Path
from typing import Iterator

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from runhistory.cli.common import make_console, workspace_option
from runhistory.core.errors import NotFoundError, RunHistoryError
from runhistory.experiment import Experiment
from runhistory.run import Run
from runhistory.tensorboard import Tensorboard
from runhistory.tensorboard.export import check_logdir, export_to_tensorboard
from runhistory.workspace import Workspace


def _selected_runs(workspace: Workspace, run_refs: tuple[str, ...], experiment_name: str | None) -> list[Run]:
    """The runs named on the command line, or the top-level runs of ``--experiment``."""
    runs = [workspace.get_run(ref) for ref in run_refs]
    if experiment_name is not None:
        if experiment_name not in workspace.experiments:
            raise NotFoundError(f"No experiment {experiment_name!r} in the workspace at {workspace.tracking_uri}.")
        runs.extend(Experiment(workspace, experiment_name).get_runs())
    return runs


@click.command("export")
@click.argument("args", nargs=-1, required=True, metavar="(RUN... | --experiment NAME) LOGDIR")
@click.option("--experiment", "-e", "experiment_name", metavar="NAME", help="Export the experiment's top-level runs.")
@click.option("--hparam", "hparams", multiple=True, metavar="NAME", help="A metric to show as a hyperparameter (repeatable).")
@click.option("--no-children", is_flag=True, help="Leave child runs out.")
@workspace_option
def export_command(
    args: tuple[str, ...], experiment_name: str | None, hparams: tuple[str, ...], no_children: bool, workspace: Workspace
) -> None:
    """Write runs (RUN: an id or EXPERIMENT:NUMBER) as TensorBoard event files under LOGDIR.

    \b
    Examples:
      runhistory export mnist:1 mnist:2 ./tb-logs
      runhistory export -e mnist --hparam lr ./tb-logs
    """
    *run_refs, logdir = args
    if not run_refs and experiment_name is None:
        raise click.UsageError("Name runs to export, or an experiment with --experiment.")
    check_logdir(logdir)
    runs = _selected_runs(workspace, tuple(run_refs), experiment_name)
    if not runs:
        raise RunHistoryError(f"Experiment {experiment_name!r} has no runs to export.")
    console = make_console()
    columns = (TextColumn("Exporting"), BarColumn(), MofNCompleteColumn(), TextColumn("runs"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("export", total=None)
        folders = export_to_tensorboard(
            runs,
            logdir,
            recursive=not no_children,
            hparams=hparams,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    console.print(f"Exported {len(folders)} run(s) to {Path(logdir).resolve()}")
    console.print(f"See them with: runhistory tensorboard --logdir {logdir}")


@click.command("tensorboard")
@click.argument("run_refs", nargs=-1, metavar="[RUN...]")
@click.option("--experiment", "-e", "experiment_name", metavar="NAME", help="Show the experiment's runs.")
@click.option("--logdir", type=click.Path(path_type=Path), help="Serve this folder (runs named are copied into it).")
@click.option("--port", "-p", type=int, default=6006, show_default=True, help="0 picks a free port.")
@click.option("--host", default="127.0.0.1", show_default=True)
@workspace_option(only_if=("run_refs", "experiment_name"))
def tensorboard_command(
    run_refs: tuple[str, ...],
    experiment_name: str | None,
    logdir: Path | None,
    port: int,
    host: str,
    workspace: Workspace,
) -> None:
    """Start TensorBoard over runs (followed live while they run) or a folder; Ctrl-C stops it.

    \b
    Examples:
      runhistory tensorboard mnist:1 mnist:2
      runhistory tensorboard -e mnist --port 0
      runhistory tensorboard --logdir ./tb-logs
    """
    runs = _selected_runs(workspace, run_refs, experiment_name)
    if not runs and logdir is None:
        raise click.UsageError("Name runs, an experiment with --experiment, or a folder with --logdir.")
    console = make_console()
    with _stopped_by_signals():
        board = Tensorboard(runs, local_root=logdir, port=port, host=host)
        try:
            with console.status("Starting TensorBoard..."):
                url = board.start()
            console.print(f"TensorBoard at {url} (Ctrl-C to stop)")
            _wait_for_interrupt()
        except KeyboardInterrupt:
            pass
        finally:
            board.stop()
        _say(console, "TensorBoard stopped.")


@contextlib.contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """Make SIGTERM and SIGHUP (the terminal closed) stop as Ctrl-C does, also while starting."""

    def stop(signum: int, _frame: object) -> None:
        for handled_signum in handled:  # once: a second signal must not cut the cleanup short
            signal.signal(handled_signum, signal.SIG_IGN)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    handled = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {signum: signal.signal(signum, stop) for signum in handled}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _wait_for_interrupt() -> None:
    """Block until Ctrl-C or a stopping signal."""
    while True:
        time.sleep(0.5)


def _say(console: Console, text: str) -> None:
    """Print, unless the terminal is gone (after SIGHUP)."""
    try:
        console.print(text)
    except OSError:
        pass

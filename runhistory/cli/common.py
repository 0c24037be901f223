"""What every command shares: opening the workspace, one-line errors, resolving runs, the console."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import click
from rich import box
from rich.console import Console
from rich.table import Table

from runhistory.core.uris import DB_FILE_NAME
from runhistory.core import settings
from runhistory.core.errors import RunHistoryError, WorkspaceNotFoundError
from runhistory.run import Run
from runhistory.store.base import RunStatus
from runhistory.workspace import (
    CONFIG_FILE,
    CONFIG_FOLDER,
    Workspace,
    WorkspaceLocation,
    locate_workspace,
)

F = TypeVar("F", bound=Callable[..., Any])

WORKSPACE_HELP = (
    "The workspace: a folder with config.json or .runhistory/, a config.json file, sqlite:///FILE, "
    "postgresql://USER:PASSWORD@HOST:PORT/DATABASE or a server's http(s)://HOST:PORT "
    f"(default: ${settings.TRACKING_URI.name}, else the nearest config.json)."
)
_ROOT_WORKSPACE_KEY = "runhistory.workspace_ref"


def one_line(message: str) -> str:
    """A message with its line breaks and runs of spaces folded into single spaces."""
    return " ".join(message.split())


def _usage_error_message(error: click.UsageError) -> str:
    """A click usage error as one line, with a pointer to ``--help`` where the message needs one."""
    message = one_line(error.format_message())
    if error.ctx is None or (isinstance(error, click.BadParameter) and not isinstance(error, click.MissingParameter)):
        return message
    return f"{message} See '{error.ctx.command_path} --help'."


class RunHistoryGroup(click.Group):
    """The root group: turns runhistory errors and usage errors into one ``Error: ...`` line, exit 1."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any):
        """Parse the root's own options, reporting a usage error on one line."""
        with _one_line_errors():
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand, reporting runhistory and usage errors on one line."""
        with _one_line_errors():
            return super().invoke(ctx)


@contextlib.contextmanager
def _one_line_errors() -> Iterator[None]:
    """Re-raise runhistory and usage errors as a ClickException, which click prints as one line."""
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise  # a bare group prints its help, as click does
    except click.UsageError as error:
        raise click.ClickException(_usage_error_message(error)) from error
    except RunHistoryError as error:
        raise click.ClickException(one_line(str(error))) from error


def open_workspace(ref: str | None, *, create: bool = False) -> Workspace:
    """The workspace named by ``--workspace`` (a path or URI), or the configured one when None.

    Never creates a workspace at a path it was given: a path without a runhistory
    config or database is an error. Without a path, only ``create`` (the writing
    commands) makes the default ``./.runhistory/``; reading commands write nothing.
    """
    location = locate_workspace_ref(ref)
    if location is None:
        return Workspace.from_config(create=create)
    try:
        return Workspace(location.tracking_uri, location.artifact_uri, create=create)
    except WorkspaceNotFoundError as exc:
        raise WorkspaceNotFoundError(f"The workspace of {location.source} does not exist yet: {exc}") from exc


def locate_workspace_ref(ref: str | None) -> WorkspaceLocation | None:
    """Where the workspace named by ``--workspace`` is, without opening it (None: the configured one).

    Raises WorkspaceNotFoundError for a path or ``sqlite:///`` file that holds no workspace.
    """
    if ref is None:
        return None
    source = f"--workspace {ref}"
    if "://" in ref:
        if ref.startswith("sqlite:///"):
            db_file = Path(ref[len("sqlite:///") :]).expanduser()
            if not db_file.is_file():
                raise WorkspaceNotFoundError(f"No runhistory database at {db_file.resolve()} (from {source}).")
        return WorkspaceLocation(ref, None, source)
    path = Path(ref).expanduser()
    if not path.exists():
        raise WorkspaceNotFoundError(f"No runhistory workspace at {path.resolve()}: no such file or folder.")
    if path.is_file() or (path / CONFIG_FILE).is_file() or (path / CONFIG_FOLDER / CONFIG_FILE).is_file():
        return locate_workspace(path)
    for folder in (path, path / CONFIG_FOLDER):
        if (folder / DB_FILE_NAME).is_file():
            return WorkspaceLocation(str(folder), None, source)
    raise WorkspaceNotFoundError(
        f"No runhistory workspace at {path.resolve()}: it holds no {CONFIG_FILE}, {CONFIG_FOLDER}/ or {DB_FILE_NAME}."
    )


def remember_root_workspace(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Callback of the root ``--workspace``: the default for every subcommand."""
    if value is not None:
        ctx.meta[_ROOT_WORKSPACE_KEY] = value
    return value


def chosen_workspace_ref(workspace_ref: str | None) -> str | None:
    """A command's ``--workspace``, else the root's (``runhistory -w REF COMMAND``), else None."""
    return workspace_ref or click.get_current_context().meta.get(_ROOT_WORKSPACE_KEY)


def workspace_ref_option(command: F) -> F:
    """Give a command ``--workspace/-w PATH|URI``, passed as ``workspace_ref`` unopened (for the
    commands that find the workspace's files themselves; see :func:`chosen_workspace_ref`)."""
    return click.option("--workspace", "-w", "workspace_ref", metavar="PATH|URI", default=None, help=WORKSPACE_HELP)(
        command
    )


def workspace_option(func: F | None = None, *, create: bool = False, only_if: tuple[str, ...] = ()) -> Any:
    """Give a command ``--workspace/-w PATH|URI`` and pass it the opened workspace as ``workspace``.

    Commands only read by default: a missing workspace is an error saying where it was looked
    for, and nothing is created. A command that writes runs (``submit``) asks for
    ``@workspace_option(create=True)``, which makes the default ``./.runhistory/`` when there is none.
    With ``only_if`` (names of the command's parameters), the workspace is opened only when one of
    them was given, else the command gets None (``tensorboard --logdir DIR`` needs none).
    """

    def decorate(command: F) -> F:
        @workspace_ref_option
        @functools.wraps(command)
        def wrapper(*args: Any, workspace_ref: str | None, **kwargs: Any) -> Any:
            ref = chosen_workspace_ref(workspace_ref)
            needed = not only_if or ref is not None or any(kwargs.get(name) for name in only_if)
            workspace = open_workspace(ref, create=create) if needed else None
            return command(*args, workspace=workspace, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate if func is None else decorate(func)


class StatusType(click.ParamType):
    """A run status, in any letter case (``completed`` is ``Completed``)."""

    name = "status"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        """The status as runhistory spells it; a usage error listing the statuses otherwise."""
        for status in RunStatus.ALL:
            if str(value).lower() == status.lower():
                return status
        self.fail(f"{value!r} is not a run status; use one of {', '.join(RunStatus.ALL)}.", param, ctx)


def resolve_run(workspace: Workspace, run_ref: str) -> Run:
    """A run by id or ``EXPERIMENT:NUMBER``; NotFoundError when there is none."""
    return workspace.get_run(run_ref.strip())


def make_console() -> Console:
    """A console on the current stdout that fits the terminal (``$COLUMNS``, else 80 when not a terminal)."""
    return Console(highlight=False, soft_wrap=False)


def new_table() -> Table:
    """A borderless table with a rule under its header, columns two spaces apart."""
    return Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))

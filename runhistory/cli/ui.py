"""``runhistory ui``: the web UI over an embedded workspace, on loopback, with zero set-up."""

from __future__ import annotations

import sys

import click

from runhistory.cli.common import chosen_workspace_ref, open_workspace, workspace_ref_option
from runhistory.cli.server import is_loopback, listening_socket, run_until_stopped
from runhistory.core.errors import RunHistoryError
from runhistory.core.uris import HTTP_SCHEMES


@click.command("ui")
@workspace_ref_option
@click.option("--host", default="127.0.0.1", show_default=True, help="The loopback address to listen on.")
@click.option("--port", default=5200, show_default=True, type=int, help="The port (0: a free one, printed).")
def ui_command(workspace_ref: str | None, host: str, port: int) -> None:
    """Browse the workspace's runs in a web browser: experiments, runs tables with filters and
    sorting, charts, comparisons and TensorBoard (loopback only; Ctrl-C stops it).

    \b
    Example:
      runhistory ui --workspace ~/projects/mnist --port 5200
    """
    from runhistory.core.extras import require

    require("fastapi", extra="server", feature="runhistory ui")
    uvicorn = require("uvicorn", extra="server", feature="runhistory ui")
    if not is_loopback(host):
        raise RunHistoryError(
            f"runhistory ui listens on loopback only, not {host}; to share a workspace use runhistory server with tokens."
        )
    workspace = open_workspace(chosen_workspace_ref(workspace_ref))
    if workspace.tracking_uri.startswith(HTTP_SCHEMES):
        raise RunHistoryError(f"The workspace is a server ({workspace.tracking_uri}): open its own UI in a browser there.")
    from runhistory.ui.app import create_ui_app

    app = create_ui_app(
        workspace.store, workspace.artifacts, tracking_uri=workspace.tracking_uri, artifact_uri=workspace.artifact_uri
    )
    sock = listening_socket(host, port)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"runhistory ui on http://{shown}:{sock.getsockname()[1]}/ (workspace {workspace.location}); Ctrl-C stops it.")
    sys.stdout.flush()
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_keep_alive=30)
    run_until_stopped(uvicorn.Server(config), sock)

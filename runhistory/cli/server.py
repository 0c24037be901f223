"""``runhistory server`` (and its tokens), ``runhistory login`` and ``runhistory sync``.

Which commands open a workspace: ``server`` and ``server token create|list|revoke`` open the
database they serve or manage (``--workspace URI``: a folder, ``sqlite:///FILE`` or
``postgresql://...``, never a server's URL; ``--store`` is its old, hidden name). ``login URL``
and ``sync`` open no workspace, so they take no ``--workspace``: ``sync`` replays each spool file
to the server it names and each spill file (metrics a process could not write in time) to the
store it names.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar

import click

from runhistory.backends import open_run_store
from runhistory.cli.common import chosen_workspace_ref, make_console, new_table
from runhistory.cli.format import format_time
from runhistory.cli.output import emit, output_option
from runhistory.core import settings
from runhistory.core.errors import RunHistoryError
from runhistory.core.uris import HTTP_SCHEMES, normalize_tracking_uri

if TYPE_CHECKING:
    from runhistory.server.auth import TokenGate
    from runhistory.store.base import RunStore

F = TypeVar("F", bound=Callable[..., Any])

DATABASE_HELP = "The workspace's database: a folder, sqlite:///FILE or postgresql://... (not a server's URL)."


def database_option(func: F) -> F:
    """Give a command ``--workspace URI`` (a database; ``--store URI`` is its hidden old name)
    and pass it the chosen URI as ``workspace_uri`` (also ``runhistory -w URI ...``), or None."""

    @click.option("--workspace", "-w", "workspace_ref", metavar="URI", default=None, help=DATABASE_HELP)
    @click.option("--store", "store_ref", metavar="URI", default=None, hidden=True)
    @functools.wraps(func)
    def wrapper(*args: Any, workspace_ref: str | None, store_ref: str | None, **kwargs: Any) -> Any:
        return func(*args, workspace_uri=chosen_workspace_ref(workspace_ref or store_ref), **kwargs)

    return wrapper  # type: ignore[return-value]


def store_option(func: F) -> F:
    """:func:`database_option` for a command that needs the database: passes it the opened
    store as ``store``, closed after it (a usage error when no ``--workspace`` is given)."""

    @database_option
    @functools.wraps(func)
    def wrapper(*args: Any, workspace_uri: str | None, **kwargs: Any) -> Any:
        _uri, store = open_database(required_database(workspace_uri))
        try:
            return func(*args, store=store, **kwargs)
        finally:
            store.close()

    return wrapper  # type: ignore[return-value]


def required_database(workspace_uri: str | None) -> str:
    """The ``--workspace`` a command cannot do without (a usage error naming it when missing)."""
    if not workspace_uri:
        raise click.UsageError("Missing option '--workspace'.", click.get_current_context())
    return workspace_uri


def open_database(workspace_uri: str) -> tuple[str, RunStore]:
    """The normalized URI of a workspace's database and its store (created when new); a server's
    URL is refused, since a server serves its own database."""
    uri = normalize_tracking_uri(workspace_uri)
    if uri.startswith(HTTP_SCHEMES):
        raise RunHistoryError(f"--workspace must be a database (a folder, sqlite:///FILE or postgresql://...), not {uri}.")
    return uri, open_run_store(uri)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.group("server", invoke_without_command=True)
@database_option
@click.option("--artifacts", "artifact_uri", metavar="URI", help="Where run files go: a folder or s3://bucket/prefix (default: beside the database).")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on (beyond loopback only with tokens).")
@click.option("--port", default=5100, show_default=True, type=int, help="The port (0: a free one, printed).")
@click.option(
    "--require-tokens",
    is_flag=True,
    help=f"Every request but /api/v1/health needs an active token, also on loopback and before one exists "
    f"(also ${settings.SERVER_REQUIRE_TOKENS.name}=1).",
)
@click.pass_context
def server_group(
    ctx: click.Context, workspace_uri: str | None, artifact_uri: str | None, host: str, port: int, require_tokens: bool
) -> None:
    """Serve a workspace's run history and its files over HTTP (the web UI at /, REST API, OpenAPI schema at /docs).

    \b
    Tokens: every request but /api/v1/health needs an active token (`runhistory server
    token create`) when --require-tokens is given, or once the database has ever had a token,
    active or revoked: revoking the last token closes the server (401 to all) rather than
    opening it. A database that never had one is served without tokens on loopback only.
    \b
    Limits (settings of the server, defaults in brackets):
    RUNHISTORY_SERVER_MAX_REQUEST [64 MiB] a request body, however it is framed;
    RUNHISTORY_SERVER_MAX_BATCH [256 MiB] a metric batch, decompressed;
    RUNHISTORY_SERVER_MAX_FILE [8 GiB] one uploaded file;
    RUNHISTORY_SERVER_HEADER_TIMEOUT [10 s] to send complete request headers;
    RUNHISTORY_SERVER_BODY_TIMEOUT [30 s] of silence in the middle of a body;
    RUNHISTORY_SERVER_MAX_CONNECTIONS [1000] open connections (past it the oldest ones
    still waiting for headers are closed).

    \b
    Example:
      runhistory server --workspace postgresql://rh@db/rh --artifacts s3://bucket/runs --host 0.0.0.0
    """
    if ctx.invoked_subcommand is not None:
        return
    serve(required_database(workspace_uri), artifact_uri, host, port, require_tokens or settings.SERVER_REQUIRE_TOKENS.flag())


def serve(workspace_uri: str, artifact_uri: str | None, host: str, port: int, require_tokens: bool) -> None:
    """Open the database and the artifact store, check every limit, and serve them until stopped."""
    from runhistory.core.extras import require

    # the server's packages are an extra, and imported only here for the CLI's start-up speed
    require("fastapi", extra="server", feature="runhistory server")
    uvicorn = require("uvicorn", extra="server", feature="runhistory server")
    from runhistory.artifacts import open_artifact_store
    from runhistory.core.uris import default_artifact_uri, redact_uri
    from runhistory.server.auth import TokenGate
    from runhistory.server.connections import ConnectionLimits, guarded_protocol
    from runhistory.ui.app import create_ui_app
    from runhistory.server.limits import RequestLimits

    limits = ConnectionLimits.from_settings().fitted_to_open_files()
    request_limits = RequestLimits.from_settings()
    uri, store = open_database(workspace_uri)
    if not artifact_uri:
        artifact_uri = default_artifact_uri(uri)
    elif "://" not in artifact_uri:
        artifact_uri = str(Path(artifact_uri).expanduser().resolve())
    artifacts = open_artifact_store(artifact_uri)
    artifacts.verify()  # refuse to start on an unusable store rather than fail each request
    tokens = TokenGate(store.tokens(), require=require_tokens)
    if not tokens.required() and not is_loopback(host):
        raise RunHistoryError(
            f"Refusing to listen on {host}, beyond loopback, without API tokens: anyone could read and write "
            f"the run history. Create one first: runhistory server token create NAME --workspace {workspace_uri}"
        )
    sock = listening_socket(host, port)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"runhistory server on http://{shown}:{sock.getsockname()[1]} (store {redact_uri(uri)}, artifacts {artifacts.uri})")
    click.echo(_token_state(tokens, require_tokens, workspace_uri))
    sys.stdout.flush()
    config = uvicorn.Config(
        create_ui_app(
            store,
            artifacts,
            tracking_uri=uri,
            artifact_uri=artifact_uri,
            require_tokens=require_tokens,
            limits=request_limits,
        ),
        http=guarded_protocol(limits),
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
    )
    run_until_stopped(uvicorn.Server(config), sock)


def run_until_stopped(server: Any, sock: socket.socket) -> None:
    """Serve on ``sock`` until Ctrl-C, which stops it quietly (exit status 0): uvicorn shuts down
    gracefully and then raises the interrupt again, which would read as a failure."""
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port`` (a free port for 0); a one-sentence error when taken."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise RunHistoryError(f"Cannot listen on {host}:{port}: {exc.strerror} (is another server running? try --port 0).") from None
    sock.listen(2048)
    return sock


def _token_state(tokens: TokenGate, forced: bool, workspace_uri: str) -> str:
    """One line at start-up: whether requests need a token, and what to do when none is active."""
    if not tokens.required():
        return "Tokens: none (this database never had one); every request on loopback is accepted."
    why = "--require-tokens" if forced else "this database has had tokens"
    if tokens.tokens.any_active():
        return f"Tokens: required ({why})."
    return (
        f"Tokens: required ({why}) but none is active: every request but /api/v1/health gets 401 until you "
        f"create one: runhistory server token create NAME --workspace {workspace_uri}"
    )


@server_group.group("token")
def token_group() -> None:
    """API tokens of a server (stored hashed in its database).

    \b
    Example:
      runhistory server token create alice --workspace sqlite:///team.db
    """


@token_group.command("create")
@click.argument("name")
@store_option
def token_create(name: str, store: RunStore) -> None:
    """Create a token called NAME; it is printed once and never stored.

    \b
    Example:
      runhistory server token create alice --workspace sqlite:///team.db
    """
    record, token = store.tokens().create(name)
    click.echo(f"Token {record.id} ({name}) created; keep it, it is not shown again:", err=True)
    click.echo(token)


@token_group.command("list")
@store_option
@output_option
def token_list(store: RunStore, output: str) -> None:
    """List tokens (ids and names, never the tokens).

    \b
    Example:
      runhistory server token list --workspace sqlite:///team.db --output json
    """
    records = [
        {"id": record.id, "name": record.name, "created_time": record.created_time, "revoked_time": record.revoked_time}
        for record in store.tokens().list()
    ]

    def render_table() -> None:
        table = new_table()
        for column in ("ID", "NAME", "CREATED", "STATE"):
            table.add_column(column, no_wrap=True)
        for record in records:
            revoked = record["revoked_time"]
            state = "active" if revoked is None else f"revoked {format_time(revoked)}"
            table.add_row(record["id"], record["name"], format_time(record["created_time"]), state)
        make_console().print(table)

    emit(records, output, render_table, columns=("id", "name", "created_time", "revoked_time"))


@token_group.command("revoke")
@click.argument("token_id")
@store_option
def token_revoke(token_id: str, store: RunStore) -> None:
    """Revoke a token by its id or name.

    \b
    Example:
      runhistory server token revoke alice --workspace sqlite:///team.db
    """
    store.tokens().revoke(token_id)
    click.echo(f"Token {token_id} revoked.")


@click.command("login")
@click.argument("url")
@click.option("--token", help="The API token (asked for when not given).")
def login_command(url: str, token: str | None) -> None:
    """Check a server's token and keep it (in ~/.runhistory/credentials.json, readable only by you).

    Talks to the server at URL only: it opens no workspace, so it takes no --workspace.

    \b
    Example:
      runhistory login http://runs.example.org:5100 --token rh_...
    """
    # the client is imported here for start-up speed (httpx)
    from runhistory.client.credentials import save_token
    from runhistory.client.http import HttpClient

    if not url.startswith(HTTP_SCHEMES):
        raise RunHistoryError(f"{url!r} is not a server URL; give http(s)://HOST:PORT.")
    if token is None:
        token = click.prompt("Token", hide_input=True)
    client = HttpClient(url, token)
    client.json("GET", "/experiments")  # 401 -> a clear error
    path = save_token(url, token)
    click.echo(f"Logged in to {client.url}; token saved in {path}.")


@click.command("sync")
@click.option(
    "--spool-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help=f"The spool folder (default: ${settings.SPOOL_DIR.name}, else the spool/ folder of ${settings.CONFIG_DIR.name}).",
)
@click.option("--token", help=f"The API token (default: ${settings.TOKEN.name}, else the saved one).")
def sync_command(spool_dir: Path | None, token: str | None) -> None:
    """Send what processes that ended left in the spool folder: spool files (metrics, statuses,
    tags a server missed) and spill files (metric points a store did not take in time).

    Each spool file is replayed, in order, to the server whose URL it names, and each spill file
    to the store it names (a database or a server), every record once however often sync runs;
    none opens a workspace, so it takes no --workspace. A file is removed once all of it is sent.

    \b
    Example:
      runhistory sync --spool-dir ~/.runhistory/spool
    """
    sent_files, failures = _send_spool_files(spool_dir, token)
    written_files, spill_failures = _write_spill_files(spool_dir, token)
    failures += spill_failures
    if failures:
        raise RunHistoryError(f"Could not send {len(failures)} spool files (kept for later): " + "; ".join(failures))
    if not sent_files and not written_files:
        click.echo("Nothing spooled.")


def _send_spool_files(spool_dir: Path | None, token: str | None) -> tuple[int, list[str]]:
    """Replay the spool files of processes that ended to their servers: (files sent, failures)."""
    # the client is imported here for start-up speed (httpx)
    from runhistory.client.http import HttpClient, Retry
    from runhistory.client.records import spooled_request
    from runhistory.client.spool import orphan_spool_files, read_spool_file

    sent_files = 0
    failures = []
    for path in _each_released_after(orphan_spool_files(spool_dir)):
        try:
            header, records = read_spool_file(path)
        except RunHistoryError as exc:  # not one of ours: say so, leave it
            failures.append(str(exc))
            continue
        client = HttpClient(header["url"], token)
        try:
            for record in records:
                method, route, options = spooled_request(record)
                client.request(method, route, **options)
        except (Retry, RunHistoryError) as exc:
            failures.append(f"{path.name}: {exc}")
            continue
        finally:
            client.close()
        path.unlink()
        sent_files += 1
        click.echo(f"Sent {len(records)} spooled records of {path.name} to {header['url']}.")
    return sent_files, failures


def _write_spill_files(spool_dir: Path | None, token: str | None) -> tuple[int, list[str]]:
    """Write the spill files of processes that ended to their stores: (files written, failures)."""
    from runhistory.core.uris import redact_uri
    from runhistory.metrics import is_transient, replay_spill_file
    from runhistory.spill import SpillReader, orphan_spill_files

    def refused(batches: list, error: Exception) -> None:
        names = ", ".join(repr(batch.name) for batch in batches)
        points = sum(len(batch.values) for batch in batches)
        click.echo(f"runhistory: dropped {points} point(s) of metric {names} of run {batches[0].run_id}: {error}", err=True)

    written_files = 0
    failures = []
    for path in _each_released_after(orphan_spill_files(spool_dir)):
        try:
            reader = SpillReader(path)
        except RunHistoryError as exc:  # not one of ours: say so, leave it
            failures.append(str(exc))
            continue
        where = redact_uri(reader.store_uri)
        try:
            store = open_run_store(reader.store_uri, token, create=False)
            try:
                points = replay_spill_file(reader, store, refused)
            finally:
                store.close()
        except Exception as exc:  # noqa: BLE001 - a store away or refusing: keep the file, say so
            if not (isinstance(exc, RunHistoryError) or is_transient(exc)):
                raise
            failures.append(f"{path.name} ({where}): {exc}")
            continue
        finally:
            reader.close()
        path.unlink()
        written_files += 1
        click.echo(f"Wrote {points:,} spilled metric points of {path.name} to {where}.")
    return written_files, failures


def _each_released_after(orphans: Iterator[tuple[Path, Any]]) -> Iterator[Path]:
    """Each orphan file, its lock held while the caller handles it, released (and its lock file
    removed) before the next."""
    for path, lock in orphans:
        try:
            yield path
        finally:
            lock.release()
            Path(lock.lock_file).unlink(missing_ok=True)

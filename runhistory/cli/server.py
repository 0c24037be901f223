"""``runhistory server`` (and its tokens), ``runhistory login`` and ``runhistory sync``."""

from __future__ import annotations

import ipaddress
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from runhistory.core.errors import RunHistoryError

if TYPE_CHECKING:
    from runhistory.server.auth import TokenGate

STORE_HELP = "The run-history store to serve: a folder, sqlite:///FILE or postgresql://..."


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _open_store(store_uri: str):
    from runhistory.backends import _open_store, normalize_tracking_uri

    uri = normalize_tracking_uri(store_uri)
    if uri.startswith(("http://", "https://")):
        raise RunHistoryError(f"--store must be a database (a folder, sqlite:///FILE or postgresql://...), not {uri}.")
    return uri, _open_store(uri)


@click.group("server", invoke_without_command=True)
@click.option("--store", "store_uri", metavar="URI", help=STORE_HELP)
@click.option("--artifacts", "artifact_uri", metavar="URI", help="Where run files go: a folder or s3://bucket/prefix (default: beside the store).")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on (beyond loopback only with tokens).")
@click.option("--port", default=5100, show_default=True, type=int, help="The port (0: a free one, printed).")
@click.option(
    "--require-tokens",
    is_flag=True,
    envvar="RUNHISTORY_SERVER_REQUIRE_TOKENS",
    help="Every request but /api/v1/health needs an active token, also on loopback and before one exists.",
)
@click.pass_context
def server_group(
    ctx: click.Context, store_uri: str | None, artifact_uri: str | None, host: str, port: int, require_tokens: bool
) -> None:
    """Serve a run history and its files over HTTP (REST API, OpenAPI schema at /docs).

    \b
    Tokens: every request but /api/v1/health needs an active token (`runhistory server
    token create`) when --require-tokens is given, or once the store has ever had a token,
    active or revoked: revoking the last token closes the server (401 to all) rather than
    opening it. A store that never had one is served without tokens on loopback only.
    \b
    Limits (environment variables of the server, defaults in brackets):
    RUNHISTORY_SERVER_MAX_REQUEST [64 MiB] a request body, however it is framed;
    RUNHISTORY_SERVER_MAX_BATCH [256 MiB] a metric batch, decompressed;
    RUNHISTORY_SERVER_MAX_FILE [8 GiB] one uploaded file;
    RUNHISTORY_SERVER_HEADER_TIMEOUT [10 s] to send complete request headers;
    RUNHISTORY_SERVER_BODY_TIMEOUT [30 s] of silence in the middle of a body;
    RUNHISTORY_SERVER_MAX_CONNECTIONS [1000] open connections (past it the oldest ones
    still waiting for headers are closed).
    """
    if ctx.invoked_subcommand is not None:
        return
    if not store_uri:
        raise click.UsageError("Missing option '--store'.", ctx)
    import uvicorn

    from runhistory.artifacts import open_artifact_store
    from runhistory.core.uris import default_artifact_uri
    from runhistory.server.app import create_app
    from runhistory.server.auth import TokenGate
    from runhistory.server.connections import ConnectionLimits, guarded_protocol
    from runhistory.core.uris import redact_uri

    limits = ConnectionLimits.from_environment().fitted_to_open_files()
    uri, store = _open_store(store_uri)
    if not artifact_uri:
        artifact_uri = default_artifact_uri(uri)
    elif "://" not in artifact_uri:
        artifact_uri = str(Path(artifact_uri).expanduser().resolve())
    artifacts = open_artifact_store(artifact_uri)
    artifacts.verify()  # refuse to start on an unusable store rather than fail each request
    tokens = TokenGate(store.tokens(), require=require_tokens)
    if not tokens.required() and not _is_loopback(host):
        raise RunHistoryError(
            f"Refusing to listen on {host}, beyond loopback, without API tokens: anyone could read and write "
            f"the run history. Create one first: runhistory server token create NAME --store {store_uri}"
        )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise RunHistoryError(f"Cannot listen on {host}:{port}: {exc.strerror} (is another server running? try --port 0).") from None
    sock.listen(2048)
    bound_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"runhistory server on http://{shown}:{bound_port} (store {redact_uri(uri)}, artifacts {artifacts.uri})", err=False)
    click.echo(_token_state(tokens, require_tokens, store_uri))
    sys.stdout.flush()
    config = uvicorn.Config(
        create_app(store, artifacts, require_tokens=require_tokens),
        http=guarded_protocol(limits),
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
    )
    uvicorn.Server(config).run(sockets=[sock])


def _token_state(tokens: TokenGate, forced: bool, store_uri: str) -> str:
    """One line at start-up: whether requests need a token, and what to do when none is active."""
    if not tokens.required():
        return "Tokens: none (this store never had one); every request on loopback is accepted."
    why = "--require-tokens" if forced else "this store has had tokens"
    if tokens.tokens.any_active():
        return f"Tokens: required ({why})."
    return (
        f"Tokens: required ({why}) but none is active: every request but /api/v1/health gets 401 until you "
        f"create one: runhistory server token create NAME --store {store_uri}"
    )


@server_group.group("token")
def token_group() -> None:
    """API tokens of a server (stored hashed in its database)."""


@token_group.command("create")
@click.argument("name")
@click.option("--store", "store_uri", required=True, metavar="URI", help=STORE_HELP)
def token_create(name: str, store_uri: str) -> None:
    """Create a token called NAME; it is printed once and never stored."""
    _uri, store = _open_store(store_uri)
    record, token = store.tokens().create(name)
    click.echo(f"Token {record.id} ({name}) created; keep it, it is not shown again:", err=True)
    click.echo(token)


@token_group.command("list")
@click.option("--store", "store_uri", required=True, metavar="URI", help=STORE_HELP)
def token_list(store_uri: str) -> None:
    """List tokens (ids and names, never the tokens)."""
    import time

    _uri, store = _open_store(store_uri)
    for record in store.tokens().list():
        state = "active" if record.revoked_time is None else "revoked " + time.strftime("%Y-%m-%d %H:%M", time.localtime(record.revoked_time))
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.created_time))
        click.echo(f"{record.id}  {record.name}  created {created}  {state}")


@token_group.command("revoke")
@click.argument("token_id")
@click.option("--store", "store_uri", required=True, metavar="URI", help=STORE_HELP)
def token_revoke(token_id: str, store_uri: str) -> None:
    """Revoke a token by its id or name."""
    _uri, store = _open_store(store_uri)
    store.tokens().revoke(token_id)
    click.echo(f"Token {token_id} revoked.")


@click.command("login")
@click.argument("url")
@click.option("--token", help="The API token (asked for when not given).")
def login_command(url: str, token: str | None) -> None:
    """Check a server's token and keep it (in ~/.runhistory/credentials.json, readable only by you)."""
    from runhistory.client.store import HttpClient, save_token

    if not url.startswith(("http://", "https://")):
        raise RunHistoryError(f"{url!r} is not a server URL; give http(s)://HOST:PORT.")
    if token is None:
        token = click.prompt("Token", hide_input=True)
    client = HttpClient(url, token)
    client.json("GET", "/experiments")  # 401 -> a clear error
    path = save_token(url, token)
    click.echo(f"Logged in to {client.url}; token saved in {path}.")


@click.command("sync")
@click.option("--spool-dir", type=click.Path(file_okay=False, path_type=Path), help="The spool folder (default: $RUNHISTORY_SPOOL_DIR, else ~/.runhistory/spool).")
@click.option("--token", help="The API token (default: $RUNHISTORY_TOKEN, else the saved one).")
def sync_command(spool_dir: Path | None, token: str | None) -> None:
    """Send what processes that ended left in the spool (metrics, statuses, tags the server missed)."""
    from runhistory.client.store import HttpClient, spooled_request
    from runhistory.client.spool import Retry, orphan_spool_files, read_spool_file

    sent_files = 0
    failures = []
    for path, lock in orphan_spool_files(spool_dir):
        try:
            header, records = read_spool_file(path)
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
        finally:
            lock.release()
            Path(lock.lock_file).unlink(missing_ok=True)
    if failures:
        raise RunHistoryError(f"Could not send {len(failures)} spool files (kept for later): " + "; ".join(failures))
    if not sent_files:
        click.echo("Nothing spooled.")

"""Where a client keeps what it needs between processes, and which token it sends to a server.

The config folder (``$RUNHISTORY_CONFIG_DIR``, else ``~/.runhistory``) holds the credentials
file that ``runhistory login`` writes (one token per server URL, readable only by its owner)
and, by default, the spool (:mod:`runhistory.client.spool`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from runhistory.core import settings


def config_dir() -> Path:
    """``$RUNHISTORY_CONFIG_DIR``, else ``~/.runhistory``: credentials and the spool live here."""
    folder = settings.CONFIG_DIR.path()
    assert folder is not None  # the setting has a default
    return folder


def credentials_file() -> Path:
    """The file in which ``runhistory login`` keeps the token of each server."""
    return config_dir() / "credentials.json"


def normalize_server_url(url: str) -> str:
    """A server URL as credentials and spools name it (no trailing slash)."""
    return url.rstrip("/")


def save_token(url: str, token: str) -> Path:
    """Remember the token of a server for the CLI and the SDK (a file only its owner can read)."""
    path = credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    known.setdefault("servers", {})[normalize_server_url(url)] = {"token": token}
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(known, out, indent=2)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
    return path


def resolve_token(url: str, token: str | None = None) -> str | None:
    """The token to use: the one given, else ``$RUNHISTORY_TOKEN``, else the one ``runhistory login`` saved."""
    if token:
        return token
    if settings.TOKEN.is_set():
        return settings.TOKEN.text()
    try:
        known = json.loads(credentials_file().read_text())
        return known["servers"][normalize_server_url(url)]["token"]
    except (OSError, ValueError, KeyError, TypeError):
        return None

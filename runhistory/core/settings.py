"""Every ``RUNHISTORY_*`` environment variable: its name, default and meaning, read in one place.

Each setting is read when it is asked for (not at import), so that a process that changes its
environment (a test, a job's supervisor handing variables to its script) sees the new value.
A value that cannot be used is :class:`~runhistory.core.errors.SettingError`, naming the
variable. The README's table of settings lists :data:`SETTINGS` (a test keeps them in step).

No imports beyond the standard library: a job's supervisor reads these before the SDK loads.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from runhistory.core.errors import SettingError


_TRUE_WORDS, _FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class Setting:
    """One environment variable: ``name``, its ``default`` as text ("" when unset means none),
    what it means, and whether it is a positive number."""

    name: str
    default: str
    meaning: str
    number: bool = False

    def text(self) -> str:
        """The variable's value, else its default (surrounding blanks removed)."""
        value = os.environ.get(self.name, "").strip()
        return value or self.default

    def is_set(self) -> bool:
        """Whether the variable is set to something other than blanks."""
        return bool(os.environ.get(self.name, "").strip())

    def positive_number(self) -> float:
        """The value as a positive, finite number; anything else is :class:`SettingError`."""
        text = self.text()
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not 0 < value < 1e15:  # also refuses nan and inf
            raise SettingError(f"${self.name} must be a positive number, not {text!r}.")
        return value

    def positive_integer(self) -> int:
        """The value as a whole number of at least 1; anything else is :class:`SettingError`."""
        value = self.positive_number()
        if value != int(value):
            raise SettingError(f"${self.name} must be a whole number of at least 1, not {self.text()!r}.")
        return int(value)

    def flag(self) -> bool:
        """The value as yes (1, true, yes, on) or no (0, false, no, off; unset: the default, else
        no); anything else is :class:`SettingError`."""
        text = self.text().lower()
        if text in _TRUE_WORDS:
            return True
        if not text or text in _FALSE_WORDS:
            return False
        raise SettingError(f"${self.name} must be 1 or 0 (true or false), not {text!r}.")

    def path(self) -> Path | None:
        """The value as a path (``~`` expanded), or None when neither set nor defaulted."""
        text = self.text()
        return Path(text).expanduser() if text else None


TRACKING_URI = Setting(
    "RUNHISTORY_TRACKING_URI", "", "The workspace to open when none is given: a folder, sqlite:///FILE, "
    "postgresql://... or http(s)://SERVER. Set for a job's script by its supervisor."
)
ARTIFACT_URI = Setting(
    "RUNHISTORY_ARTIFACT_URI", "", "Where the workspace's files live when not beside its database: a folder, "
    "s3://bucket/prefix or the server."
)
RUN_ID = Setting("RUNHISTORY_RUN_ID", "", "The run a job's script belongs to (Run.get_context()); set by the supervisor.")
TOKEN = Setting("RUNHISTORY_TOKEN", "", "The API token for a runhistory server (else the one `runhistory login` saved).")
CONFIG_DIR = Setting("RUNHISTORY_CONFIG_DIR", "~/.runhistory", "Where saved credentials and the spool live.")
SPOOL_DIR = Setting(
    "RUNHISTORY_SPOOL_DIR", "", "Where what could not reach a server waits (default: the spool/ folder of the config folder)."
)
HTTP_RETRY_TIMEOUT = Setting(
    "RUNHISTORY_HTTP_RETRY_TIMEOUT", "30", "Seconds a client retries a request while the server cannot be reached.", True
)
COMPLETE_TIMEOUT = Setting(
    "RUNHISTORY_COMPLETE_TIMEOUT", "30", "Seconds ending a run waits for its spooled points to reach the server.", True
)
FLUSH_INTERVAL = Setting("RUNHISTORY_FLUSH_INTERVAL", "0.5", "Seconds between background flushes of logged metrics.", True)
SQLITE_BUSY_TIMEOUT = Setting(
    "RUNHISTORY_SQLITE_BUSY_TIMEOUT", "60", "Seconds a statement waits for another process's lock on a SQLite workspace.", True
)
BUFFER_LIMIT_MB = Setting(
    "RUNHISTORY_BUFFER_LIMIT_MB", "256", "MB of logged points a process keeps in memory; past it they wait in a local spill file.", True
)
SNAPSHOT_LIMIT_MB = Setting("RUNHISTORY_SNAPSHOT_LIMIT_MB", "300", "The largest source folder a job may snapshot, in MB.", True)
S3_ENDPOINT_URL = Setting(
    "RUNHISTORY_S3_ENDPOINT_URL", "", "The S3 endpoint of s3:// artifact stores (else $AWS_ENDPOINT_URL_S3, "
    "$AWS_ENDPOINT_URL, else AWS)."
)
SERVER_MAX_REQUEST = Setting(
    "RUNHISTORY_SERVER_MAX_REQUEST", str(64 << 20), "Server: the largest request body in bytes, however it is framed.", True
)
SERVER_MAX_BATCH = Setting(
    "RUNHISTORY_SERVER_MAX_BATCH", str(256 << 20), "Server: the largest metric batch in bytes, decompressed.", True
)
SERVER_MAX_FILE = Setting("RUNHISTORY_SERVER_MAX_FILE", str(8 << 30), "Server: the largest uploaded file in bytes.", True)
SERVER_HEADER_TIMEOUT = Setting(
    "RUNHISTORY_SERVER_HEADER_TIMEOUT", "10", "Server: seconds a client has to send complete request headers.", True
)
SERVER_BODY_TIMEOUT = Setting(
    "RUNHISTORY_SERVER_BODY_TIMEOUT", "30", "Server: seconds of silence allowed in the middle of a request body.", True
)
SERVER_MAX_CONNECTIONS = Setting(
    "RUNHISTORY_SERVER_MAX_CONNECTIONS", "1000", "Server: open connections at most (past it the oldest idle ones close).", True
)
SERVER_REQUIRE_TOKENS = Setting(
    "RUNHISTORY_SERVER_REQUIRE_TOKENS", "", "Server: 1 to refuse requests without a token even before any token exists."
)
UI_MAX_BOARDS = Setting(
    "RUNHISTORY_UI_MAX_BOARDS", "4", "Web UI: TensorBoards it runs at once for Open in TensorBoard.", True
)
UI_BOARD_IDLE = Setting(
    "RUNHISTORY_UI_BOARD_IDLE", "600", "Web UI: seconds a TensorBoard it started may go unused before it is stopped.", True
)

SETTINGS: tuple[Setting, ...] = tuple(value for value in dict(globals()).values() if isinstance(value, Setting))

"""A real ``runhistory server`` in a child process, for the server tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.helpers import python_env, stop_process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def runhistory_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """``runhistory ARGS`` in a child process (not checked: the caller looks at returncode)."""
    return subprocess.run(
        [sys.executable, "-m", "runhistory.cli.main", *args],
        env=python_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class ServerProcess:
    """``runhistory server`` (by default on a SQLite store and a folder in ``folder``), restartable
    on the same port; ``env`` is added to the server's environment (S3 credentials, limits),
    ``args`` to its command line."""

    def __init__(
        self,
        folder: Path,
        port: int | None = None,
        store_uri: str | None = None,
        artifacts: Path | str | None = None,
        args: tuple[str, ...] = (),
        **env: str,
    ) -> None:
        self.folder = folder
        self.store_uri = store_uri or f"sqlite:///{folder / 'server.db'}"
        self.artifacts = artifacts or folder / "artifacts"
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.args = args
        self.process: subprocess.Popen | None = None
        folder.mkdir(parents=True, exist_ok=True)

    def start(self, timeout: float = 30) -> "ServerProcess":
        log = open(self.folder / "server.log", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runhistory.cli.main", "server", "--workspace", self.store_uri,
             "--artifacts", str(self.artifacts), "--port", str(self.port), *self.args],
            env=python_env(**self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not answer within {timeout} s:\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        return (self.folder / "server.log").read_text(errors="replace")

    def kill9(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        stop_process(self.process)

    def client_env(self, **extra: str) -> dict[str, str]:
        """The environment of a client process of this server."""
        return {"RUNHISTORY_SPOOL_DIR": str(self.folder / "spool"), "RUNHISTORY_CONFIG_DIR": str(self.folder / "home"), **extra}

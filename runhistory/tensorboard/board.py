"""``Tensorboard``: the real TensorBoard over runs, following the ones still going."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import webbrowser
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Iterable, Sequence

from runhistory.errors import TensorboardError
from runhistory.tensorboard.follow import DEFAULT_INTERVAL_S, Follower
from runhistory.tensorboard.launcher import TensorboardServer
from runhistory.tensorboard.layout import resolve_runs

if TYPE_CHECKING:
    from runhistory.run import Run

FIRST_PASS_TIMEOUT_S = 600.0


class Tensorboard:
    """TensorBoard over runs: ``url = Tensorboard([run]).start()``, then ``stop()``.

    Each run and each of its descendants is one TensorBoard run in ``local_root`` (a
    temporary folder when None, removed by :meth:`stop`), named by display name and number:
    the event files the run's own code writes under ``logs/`` and its run-history metrics.
    Runs still going are followed until they end. ``Tensorboard([], local_root=DIR)``
    serves a folder as it is. ``port=0`` picks a free port.
    """

    def __init__(
        self,
        runs: "Iterable[Run | str]",
        local_root: str | os.PathLike | None = None,
        port: int = 6006,
        host: str = "127.0.0.1",
        *,
        load_fast: bool | None = None,
        reload_interval: float = 1.0,
        follow_interval: float = DEFAULT_INTERVAL_S,
        hparams: Sequence[str] = (),
    ) -> None:
        self._runs = resolve_runs(list(runs))
        self._local_root = Path(local_root).expanduser().absolute() if local_root is not None else None
        self._port = port
        self._host = host
        self._load_fast = load_fast
        self._reload_interval = reload_interval
        self._follow_interval = follow_interval
        self._hparams = list(hparams)
        self._temporary_root: Path | None = None
        self._follower: Follower | None = None
        self._server: TensorboardServer | None = None

    @property
    def url(self) -> str | None:
        """The URL TensorBoard answers on, once started."""
        return self._server.url if self._server is not None and self._server.running else None

    @property
    def local_root(self) -> Path | None:
        """The folder TensorBoard serves (known once started)."""
        return self._local_root or self._temporary_root

    def start(self, start_browser: bool = False) -> str:
        """Copy the runs' logs and metrics, start TensorBoard, and return its URL once it answers."""
        if self._server is not None and self._server.running:
            return self._server.url
        root = self._prepare_root()
        try:
            if self._runs:
                self._follower = Follower(self._runs, root, self._follow_interval, self._hparams)
                self._follower.start()
            self._server = TensorboardServer(
                root, port=self._port, host=self._host, reload_interval=self._reload_interval, load_fast=self._load_fast
            )
            url = self._server.start()
            if self._follower is not None and not self._follower.first_pass_done.wait(FIRST_PASS_TIMEOUT_S):
                raise TensorboardError(f"Copying the runs into {root} took longer than {FIRST_PASS_TIMEOUT_S:.0f} s.")
        except BaseException:
            self.stop()
            raise
        if start_browser:
            webbrowser.open(url)
        return url

    def wait_for_runs(self, timeout: float | None = None) -> bool:
        """Wait until every followed run has ended, its last bytes are copied and TensorBoard has
        had two reloads to read them: what it then shows is final. Whether that happened within
        ``timeout`` seconds (runs still going keep growing)."""
        if self._follower is not None and not self._follower.wait(timeout):
            return False
        time.sleep(2 * self._reload_interval)
        return True

    def _prepare_root(self) -> Path:
        if self._local_root is None:
            self._temporary_root = Path(tempfile.mkdtemp(prefix="runhistory-tensorboard-"))
            return self._temporary_root
        if self._local_root.exists() and not self._local_root.is_dir():
            raise TensorboardError(f"Cannot serve {self._local_root}: it is a file, not a folder.")
        self._local_root.mkdir(parents=True, exist_ok=True)
        return self._local_root

    def stop(self) -> None:
        """Stop following and stop TensorBoard; leaves no process behind. Stopping twice is harmless."""
        if self._follower is not None:
            self._follower.stop()
            self._follower = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._temporary_root is not None:
            shutil.rmtree(self._temporary_root, ignore_errors=True)
            self._temporary_root = None

    def __enter__(self) -> "Tensorboard":
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

"""``Tensorboard``: the real TensorBoard over runs, following the ones still going.

Neither TensorBoard nor the temporary copy of the runs outlives the process that started
them: :meth:`Tensorboard.stop` ends both, and so does the process's exit without it (an exit
hook), while TensorBoard's watchdog (see :mod:`runhistory.tensorboard.launcher`) covers
``kill -9``, ``os._exit`` and signals. The copy's folder name holds its owner's pid and start
time, so that a copy whose owner and TensorBoard were both killed is removed by the next start.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import threading
import time
import weakref
import webbrowser
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Iterable, Sequence

from runhistory.backends import add_exit_hook
from runhistory.core.errors import TensorboardError
from runhistory.core.paths import refuse_non_folder
from runhistory.tensorboard.follow import DEFAULT_INTERVAL_S, Follower
from runhistory.core.processes import process_alive, process_identity
from runhistory.tensorboard.launcher import TensorboardServer
from runhistory.tensorboard.layout import resolve_runs

if TYPE_CHECKING:
    from runhistory.run import Run

FIRST_PASS_TIMEOUT_S = 600.0
COPY_PREFIX = "runhistory-tensorboard-"
# runhistory-tensorboard-<owner pid>-<owner start time, ms>-<random>
_COPY_NAME = re.compile(re.escape(COPY_PREFIX) + r"(\d+)-(\d+)-[A-Za-z0-9_]+")

_open_boards: "weakref.WeakSet[Tensorboard]" = weakref.WeakSet()
_open_boards_lock = threading.Lock()
_exit_hook_added = False


def copy_folder_owner(folder: Path) -> tuple[int, float] | None:
    """The (pid, start time) of the process a temporary copy belongs to, from its name."""
    match = _COPY_NAME.fullmatch(folder.name)
    return (int(match.group(1)), int(match.group(2)) / 1000) if match else None


def remove_orphaned_copies(parent: Path | None = None) -> list[Path]:
    """Remove this user's temporary copies (in ``parent``, default the temp folder) whose owner
    process is gone: they were left by an owner killed together with its TensorBoard."""
    parent = Path(parent or tempfile.gettempdir())
    removed = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        owner = copy_folder_owner(entry)
        if owner is None or process_alive(*owner):
            continue
        try:
            info = entry.lstat()
        except OSError:
            continue
        ours = not hasattr(os, "getuid") or info.st_uid == os.getuid()
        if stat.S_ISDIR(info.st_mode) and ours:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _make_copy_folder() -> Path:
    """A new temporary folder named after this process (pid and start time)."""
    pid, started = process_identity()
    return Path(tempfile.mkdtemp(prefix=f"{COPY_PREFIX}{pid}-{round(started * 1000)}-"))


def _release(follower: Follower | None, server: TensorboardServer | None, copy: Path | None, owner: int) -> None:
    """Stop following, stop TensorBoard and remove the temporary copy (not in a forked child)."""
    if os.getpid() != owner:
        return
    if follower is not None:
        follower.stop()
    if server is not None:
        server.stop()
    if copy is not None:
        shutil.rmtree(copy, ignore_errors=True)


def _stop_open_boards() -> None:
    for board in list(_open_boards):
        board.stop()


def _register(board: "Tensorboard") -> None:
    global _exit_hook_added
    with _open_boards_lock:
        if not _exit_hook_added:
            add_exit_hook(_stop_open_boards)
            _exit_hook_added = True
        _open_boards.add(board)


class Tensorboard:
    """TensorBoard over runs: ``url = Tensorboard([run]).start()``, then ``stop()``.

    Each run and each of its descendants is one TensorBoard run in ``local_root`` (a
    temporary folder when None, removed by :meth:`stop` or when this process ends), named by
    display name and number:
    the event files the run's own code writes under ``logs/`` and its run-history metrics.
    Runs still going are followed until they end. ``Tensorboard([], local_root=DIR)``
    serves a folder as it is. ``port=0`` picks a free port. Run ids are looked up in the
    configured workspace, which is never created for it. ``path_prefix`` (``/tensorboard/abc``)
    serves TensorBoard under that path, behind a proxy that forwards it unchanged.
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
        path_prefix: str = "",
    ) -> None:
        self._runs = resolve_runs(list(runs))
        self._local_root = Path(local_root).expanduser().absolute() if local_root is not None else None
        self._port = port
        self._host = host
        self._load_fast = load_fast
        self._reload_interval = reload_interval
        self._follow_interval = follow_interval
        self._hparams = list(hparams)
        self._path_prefix = path_prefix
        self._temporary_root: Path | None = None
        self._follower: Follower | None = None
        self._server: TensorboardServer | None = None
        self._finalizer: weakref.finalize | None = None

    @property
    def url(self) -> str | None:
        """The URL TensorBoard answers on, once started."""
        return self._server.url if self._server is not None and self._server.running else None

    @property
    def port(self) -> int | None:
        """The port TensorBoard answers on, once started."""
        return self._server.port if self._server is not None and self._server.running else None

    @property
    def local_root(self) -> Path | None:
        """The folder TensorBoard serves (known once started)."""
        return self._local_root or self._temporary_root

    def start(self, start_browser: bool = False) -> str:
        """Copy the runs' logs and metrics, start TensorBoard, and return its URL once it answers."""
        if self._server is not None and self._server.running:
            return self._server.url
        self.stop()  # what is left of a TensorBoard that exited on its own
        remove_orphaned_copies()
        root = self._prepare_root()
        try:
            follower = Follower(self._runs, root, self._follow_interval, self._hparams) if self._runs else None
        except BaseException:
            _release(None, None, self._temporary_root, os.getpid())
            self._temporary_root = None
            raise
        server = TensorboardServer(
            root,
            port=self._port,
            host=self._host,
            reload_interval=self._reload_interval,
            load_fast=self._load_fast,
            remove_logdir_if_orphaned=self._temporary_root is not None,
            path_prefix=self._path_prefix,
        )
        self._follower, self._server = follower, server
        self._finalizer = weakref.finalize(self, _release, follower, server, self._temporary_root, os.getpid())
        _register(self)
        try:
            if follower is not None:
                follower.start()  # copies while TensorBoard starts
            url = server.start()
            if follower is not None and not follower.first_pass_done.wait(FIRST_PASS_TIMEOUT_S):
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
            self._temporary_root = _make_copy_folder()
            return self._temporary_root
        refuse_non_folder(self._local_root, "Cannot serve", TensorboardError)
        self._local_root.mkdir(parents=True, exist_ok=True)
        return self._local_root

    def stop(self) -> None:
        """Stop following and stop TensorBoard; leaves no process behind and removes the
        temporary copy. Stopping twice is harmless."""
        finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            finalizer()
        _open_boards.discard(self)
        self._follower = None
        self._server = None
        self._temporary_root = None

    def __enter__(self) -> "Tensorboard":
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

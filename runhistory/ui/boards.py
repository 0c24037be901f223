"""The UI's TensorBoards: one real ``Tensorboard`` per set of runs, served through the UI's proxy.

Each board is TensorBoard started with ``--path_prefix=/tensorboard/{board_id}`` on 127.0.0.1 and
a free port (TensorBoard has no sign-in of its own, so only the UI's proxy, behind the UI's
session, reaches it). The runs are followed live while they go on. A board nobody has used
(no proxied request) for ``idle_timeout_s`` is stopped by a background thread; at most
``max_boards`` run at once; :meth:`BoardManager.close_all` stops them all (the app's shutdown).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Sequence

from runhistory.core.errors import InvalidRequestError, NotFoundError, RunHistoryError
from runhistory.tensorboard import Tensorboard
from runhistory.ui.workspace import LazyWorkspace
from runhistory.workspace import Workspace

PATH_PREFIX = "/tensorboard"
MAX_RUNS_PER_BOARD = 200  # a TensorBoard over more runs than this is no longer readable


class BoardsFullError(RunHistoryError):
    """Every TensorBoard slot is in use by boards that are not idle."""

    http_status = 429
    code = "too_many_tensorboards"


@dataclass
class Board:
    """One running TensorBoard: its id, the runs it shows, and when it was last used."""

    board_id: str
    run_ids: frozenset[str]
    tensorboard: Tensorboard
    port: int
    last_used: float = field(default_factory=time.monotonic)

    def alive(self) -> bool:
        """Whether its TensorBoard still answers on its port."""
        return self.tensorboard.port is not None


def board_path(board_id: str) -> str:
    """The URL path TensorBoard of ``board_id`` is served under (its ``--path_prefix``)."""
    return f"{PATH_PREFIX}/{board_id}"


class BoardManager:
    """At most ``max_boards`` TensorBoards over runs of one workspace, stopped when idle."""

    def __init__(
        self,
        tracking_uri: str,
        artifact_uri: str | None,
        *,
        max_boards: int = 4,
        idle_timeout_s: float = 600,
        workspace: LazyWorkspace | None = None,
    ) -> None:
        if max_boards < 1:
            raise InvalidRequestError(f"max_boards must be at least 1, got {max_boards}.")
        self.tracking_uri = tracking_uri
        self.artifact_uri = artifact_uri
        self.max_boards = max_boards
        self.idle_timeout_s = float(idle_timeout_s)
        self._workspace = workspace or LazyWorkspace(tracking_uri, artifact_uri)
        self._boards: dict[str, Board] = {}
        self._lock = threading.Lock()  # the boards and the workspace
        self._start_lock = threading.Lock()  # one TensorBoard starts at a time (each takes seconds)
        self._stopping = threading.Event()
        self._reaper: threading.Thread | None = None

    def workspace(self) -> Workspace:
        """The workspace the runs are read from, opened once (never created)."""
        return self._workspace.get()

    def boards(self) -> list[Board]:
        """The boards running now."""
        with self._lock:
            return list(self._boards.values())

    def open(self, run_ids: Sequence[str]) -> str:
        """The id of a board over ``run_ids`` (the same runs reuse their board), started if needed.

        Unknown run: NotFoundError (404); no runs or too many: InvalidRequestError (422); every slot
        busy after closing idle boards: BoardsFullError (429).
        """
        wanted = self._check_run_ids(run_ids)
        existing = self._find(wanted)  # without waiting for another board's start
        if existing is not None:
            return existing
        with self._start_lock:
            existing = self._find(wanted)
            if existing is not None:
                return existing
            self.close_idle()
            self._check_room()
            runs = [self.workspace().get_run(run_id) for run_id in sorted(wanted)]
            board_id = secrets.token_hex(8)
            tensorboard = Tensorboard(runs, port=0, path_prefix=board_path(board_id))
            tensorboard.start()
            board = Board(board_id, wanted, tensorboard, tensorboard.port or 0)
            with self._lock:
                self._boards[board_id] = board
            self._start_reaper()
            return board_id

    def _check_run_ids(self, run_ids: Sequence[str]) -> frozenset[str]:
        wanted = frozenset(str(run_id) for run_id in run_ids)
        if not wanted:
            raise InvalidRequestError("Select at least one run to open in TensorBoard.")
        if len(wanted) > MAX_RUNS_PER_BOARD:
            raise InvalidRequestError(f"Open at most {MAX_RUNS_PER_BOARD} runs in one TensorBoard, not {len(wanted)}.")
        return wanted

    def _find(self, wanted: frozenset[str]) -> str | None:
        """The id of a live board over exactly ``wanted``, marked used; None when there is none."""
        with self._lock:
            for board in self._boards.values():
                if board.run_ids == wanted and board.alive():
                    board.last_used = time.monotonic()
                    return board.board_id
        return None

    def _check_room(self) -> None:
        with self._lock:
            if len(self._boards) >= self.max_boards:
                raise BoardsFullError(
                    f"{len(self._boards)} TensorBoards are open, the most this server runs at once; "
                    f"one closes after {self.idle_timeout_s:g} s unused, try again then."
                )

    def port_of(self, board_id: str) -> int:
        """The loopback port of board ``board_id``, which counts as a use of it (NotFoundError if none)."""
        with self._lock:
            board = self._boards.get(board_id)
            if board is not None and board.alive():
                board.last_used = time.monotonic()
                return board.port
        raise NotFoundError(f"No TensorBoard {board_id!r} is open here (it may have closed when unused); open it again.")

    def close_idle(self) -> list[str]:
        """Stop the boards unused for ``idle_timeout_s`` and those whose TensorBoard has exited; their ids."""
        now = time.monotonic()
        with self._lock:
            gone = [
                board for board in self._boards.values()
                if now - board.last_used >= self.idle_timeout_s or not board.alive()
            ]
            for board in gone:
                del self._boards[board.board_id]
        for board in gone:
            board.tensorboard.stop()
        return [board.board_id for board in gone]

    def close_all(self) -> None:
        """Stop every board and the idle check (the app's shutdown)."""
        self._stopping.set()
        with self._lock:
            boards, self._boards = list(self._boards.values()), {}
        for board in boards:
            board.tensorboard.stop()

    def _start_reaper(self) -> None:
        """Start the thread that closes idle boards, once."""
        with self._lock:
            if self._reaper is not None and self._reaper.is_alive():
                return
            self._stopping.clear()
            self._reaper = threading.Thread(target=self._reap, name="runhistory-ui-boards", daemon=True)
            self._reaper.start()

    def _reap(self) -> None:
        interval = min(max(self.idle_timeout_s / 4, 0.2), 30.0)
        while not self._stopping.wait(interval):
            self.close_idle()
            with self._lock:
                if not self._boards:
                    self._reaper = None
                    return

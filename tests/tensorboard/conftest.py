"""Fixtures for the TensorBoard tests: one log folder and one real TensorBoard per loader."""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest

from runhistory.tensorboard.events import EventFileWriter
from runhistory.tensorboard.launcher import TensorboardServer

T = TypeVar("T")

WALL0 = 1_700_000_000.25
TRIALS = {
    "trial_a": {"lr": 0.1, "optimizer": "adam", "batchnorm": True, "layers": 2},
    "trial_b": {"lr": 0.01, "optimizer": "sgd", "batchnorm": False, "layers": 4},
}
TABLE = [["epoch", "accuracy"], ["1", "0.5"], ["2", "0.75"]]


def make_png(width: int, height: int) -> bytes:
    """A valid RGB PNG of the given size (a gradient), made with zlib only."""
    pixels = [[(x * 40 % 256, y * 40 % 256, 128) for x in range(width)] for y in range(height)]
    rows = b"".join(b"\x00" + bytes(c for pixel in row for c in pixel) for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def poll(fetch: Callable[[], T], done: Callable[[T], bool], timeout: float = 20.0) -> T:
    """Call ``fetch`` until ``done(result)`` or the deadline; return the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = fetch()
        if done(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def scalar_steps(client: httpx.Client, run: str, tag: str) -> list[int]:
    """The steps TensorBoard serves for one scalar tag of one run (none while it does not know them)."""
    response = client.get("data/plugin/scalars/scalars", params={"run": run, "tag": tag})
    return [point[1] for point in response.json()] if response.status_code == 200 else []


def assert_grows_while_watched(client: httpx.Client, run: str, tag: str) -> None:
    """TensorBoard serves ``tag`` of ``run``, then at least three more steps: the curve grows live."""
    first = poll(lambda: scalar_steps(client, run, tag), lambda steps: len(steps) >= 2, timeout=30)
    assert len(first) >= 2, f"{tag} never appeared in {run}"
    grown = poll(lambda: scalar_steps(client, run, tag), lambda steps: len(steps) >= len(first) + 3, timeout=30)
    assert len(grown) >= len(first) + 3 and grown == list(range(len(grown)))


@dataclass
class Series:
    """A scalar series as written, to compare with what TensorBoard serves."""

    steps: np.ndarray
    values: np.ndarray
    walls: np.ndarray

    def rows(self) -> list[list[float]]:
        """[[wall_time, step, value], ...] as /data/plugin/scalars/scalars returns it."""
        return [
            [float(w), int(s), float(v)]
            for w, s, v in zip(self.walls, self.steps, self.values.astype(np.float32))
        ]


@dataclass
class LogData:
    """The log folder shared by the TensorBoard tests and what was written into it."""

    root: Path
    series: dict[tuple[str, str], Series] = field(default_factory=dict)
    png: bytes = b""
    histogram_values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    live: EventFileWriter | None = None
    next_live_step: int = 2


def _write_trial(root: Path, run: str, index: int, data: LogData) -> None:
    """One HParams session run with scalars, text, an image and a histogram."""
    rng = np.random.default_rng(index)
    steps = np.concatenate([[0, 1, 2, 127, 128, 16384], 20000 + np.arange(200) * 7])
    values = rng.normal(size=steps.size).astype(np.float32)
    walls = WALL0 + np.arange(steps.size) * 0.5 + index
    with EventFileWriter(root / run) as writer:
        writer.add_hparams_session(TRIALS[run], start_time=WALL0, end_time=WALL0 + 100)
        writer.add_scalars("loss", steps, values, walls)
        writer.add_scalar("accuracy", 0.5 + index / 10, 3, WALL0)
        writer.add_text("notes", f"run **{run}**", 5, WALL0)
        writer.add_text("table", TABLE, 6, WALL0)
        writer.add_image("samples/image", data.png, 7, WALL0)
        writer.add_histogram("weights", data.histogram_values, 8, WALL0, buckets=10)
    data.series[(run, "loss")] = Series(steps, values, walls)


@pytest.fixture(scope="session")
def logdata(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LogData]:
    """A log folder: an HParams experiment at the top, two trial runs, a run kept open."""
    root = tmp_path_factory.mktemp("tblogs")
    data = LogData(root, png=make_png(5, 3), histogram_values=np.arange(1000.0))
    with EventFileWriter(root) as writer:
        writer.add_hparams_experiment(
            {
                "lr": [0.1, 0.01],
                "optimizer": ["adam", "sgd"],
                "batchnorm": [True, False],
                "layers": None,
            },
            ["loss", "accuracy"],
            time_created=WALL0,
        )
    for index, run in enumerate(TRIALS):
        _write_trial(root, run, index, data)
    # Not an HParams session: the HParams plugin fails (HTTP 500) on metric steps >= 2**31.
    big = Series(np.array([0, 2**31, 2**40, 2**62]), np.array([1, 2, 3, 4], np.float32), WALL0 + np.arange(4))
    with EventFileWriter(root / "big_steps") as writer:
        writer.add_scalars("loss", big.steps, big.values, big.walls)
    data.series[("big_steps", "loss")] = big
    with EventFileWriter(root / "rewind") as writer:  # steps that go back: loaders differ
        writer.add_scalars("loss", [0, 1, 2, 3], [0.0, 1.0, 2.0, 3.0], WALL0)
        writer.add_scalars("loss", [2, 3], [20.0, 30.0], WALL0 + 1)
    data.live = EventFileWriter(root / "live")
    data.live.add_scalars("progress", [0, 1], [0.0, 1.0], [WALL0, WALL0 + 1])
    data.live.flush()
    yield data
    data.live.close()


@dataclass
class Board:
    """A running TensorBoard and an HTTP client for it."""

    server: TensorboardServer
    client: httpx.Client
    load_fast: bool

    def get(self, path: str, **params: Any) -> Any:
        """GET a JSON endpoint; fail on a non-200 answer."""
        response = self.client.get(path, params=params)
        assert response.status_code == 200, (path, response.status_code, self.server.output())
        return response.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """POST JSON to an endpoint; fail on a non-200 answer."""
        response = self.client.post(path, json=body)
        assert response.status_code == 200, (path, response.status_code, self.server.output())
        return response.json()


@pytest.fixture(scope="session", params=[True, False], ids=["load_fast", "python_loader"])
def board(request: pytest.FixtureRequest, logdata: LogData) -> Iterator[Board]:
    """The real TensorBoard over ``logdata``, once with the Rust data server, once without."""
    server = TensorboardServer(logdata.root, port=0, load_fast=request.param, reload_interval=1)
    server.start(timeout=60)
    client = httpx.Client(base_url=server.url or "", timeout=30)
    board = Board(server, client, request.param)
    expected = {".", "big_steps", "live", "rewind", *TRIALS}
    try:
        # The loader reads the folder in the background: wait for every run to be in.
        poll(lambda: set(board.get("data/runs")), lambda runs: expected <= runs)
        yield board
    finally:
        client.close()
        server.stop()


def serve_board(logdir: Path, load_fast: bool, min_runs: int, **options: Any) -> Iterator[Board]:
    """A TensorBoard over ``logdir`` once it lists ``min_runs`` runs, stopped at the end (for fixtures)."""
    server = TensorboardServer(logdir, port=0, load_fast=load_fast, **options)
    server.start()
    client = httpx.Client(base_url=server.url or "", timeout=30)
    board = Board(server, client, load_fast)
    try:
        poll(lambda: board.get("data/runs"), lambda runs: len(runs) >= min_runs)
        yield board
    finally:
        client.close()
        server.stop()

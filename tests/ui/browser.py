"""Shared helpers of the browser tests: a real ``runhistory server`` with the UI, and Debian's
Chromium driven by Playwright (``executable_path=/usr/bin/chromium``, never Playwright's download).

The server's data goes straight into its SQLite file and artifact folder through an embedded
:class:`~runhistory.Workspace` on the same files (as a second process on one workspace does).
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import httpx

from runhistory import Workspace
from tests.helpers import python_env, stop_process
from tests.server.support import ServerProcess, free_port, runhistory_cli

T = TypeVar("T")
CHROMIUM = Path("/usr/bin/chromium")
NO_CHROMIUM = (
    "No browser at /usr/bin/chromium: run `scripts/chromium.sh install` (it installs Debian's chromium "
    "package) to run the browser tests."
)
TIMEOUT_MS = 30_000

# The number of series the ECharts instance inside the element ``selector`` draws (-1: no chart yet).
SERIES_COUNT_JS = """(selector) => {
    const el = document.querySelector(selector);
    if (!el || !window.echarts) return -1;
    const chart = window.echarts.getInstanceByDom(el) || window.echarts.getInstanceByDom(el.firstElementChild || el);
    if (!chart) return -1;
    return (chart.getOption().series || []).length;
}"""

# The option of the ECharts instance of ``selector`` as plain JSON (null before it is drawn).
CHART_OPTION_JS = """(selector) => {
    const el = document.querySelector(selector);
    if (!el || !window.echarts) return null;
    const chart = window.echarts.getInstanceByDom(el) || window.echarts.getInstanceByDom(el.firstElementChild || el);
    if (!chart) return null;
    const option = chart.getOption();
    return JSON.parse(JSON.stringify({series: option.series, parallelAxis: option.parallelAxis || []}));
}"""


@dataclass
class UiServer:
    """A ``runhistory server`` (SQLite store, artifact folder) serving the UI, and the workspace on its files."""

    server: ServerProcess
    workspace: Workspace
    token: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return self.server.url

    def stop(self) -> None:
        """Stop the server process."""
        self.server.stop()


def start_ui_server(folder: Path, *, tokens: bool = False) -> UiServer:
    """Start a server in ``folder``; with ``tokens`` one API token is made first and every page
    then needs it (``--require-tokens``)."""
    folder.mkdir(parents=True, exist_ok=True)
    store_uri = f"sqlite:///{folder / 'server.db'}"
    workspace = Workspace(store_uri, folder / "artifacts")
    token = create_token(store_uri) if tokens else None
    server = ServerProcess(folder, store_uri=store_uri, artifacts=folder / "artifacts",
                           args=("--require-tokens",) if tokens else (),
                           RUNHISTORY_CONFIG_DIR=str(folder / "home"))
    server.start(timeout=60)
    return UiServer(server, workspace, token)


def create_token(store_uri: str) -> str:
    """A new API token of the server whose database is ``store_uri``."""
    done = runhistory_cli("server", "token", "create", "browser-tests", "--workspace", store_uri)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium, headless (no sandbox: the tests may run as root in a container)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])


def wait_for(read: Callable[[], T], done: Callable[[T], bool], timeout: float = 30, what: str = "") -> T:
    """``read()`` until ``done`` holds for its value; fail with the last value after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"{what or 'the condition'}: still {value!r} after {timeout} s"
        time.sleep(0.2)


def series_count(page: Any, selector: str) -> int:
    """How many series the chart in ``selector`` draws now (-1 before it is drawn)."""
    return page.evaluate(SERIES_COUNT_JS, selector)


def chart_option(page: Any, selector: str) -> dict[str, Any] | None:
    """The series and parallel axes of the chart in ``selector`` (None before it is drawn)."""
    return page.evaluate(CHART_OPTION_JS, selector)


def points_drawn(page: Any, selector: str) -> int:
    """How many points the chart in ``selector`` draws, over all its series (-1 before it is drawn)."""
    option = chart_option(page, selector)
    if option is None:
        return -1
    return sum(len(series.get("data") or []) for series in option["series"])


def cell_texts(page: Any, key: str) -> list[str]:
    """The text of column ``key`` (``td[data-key=KEY]``) of each top-level row of ``table#runs``."""
    return [text.strip() for text in page.locator(f'table#runs tr.run[data-depth="0"] td[data-key="{key}"]').all_inner_texts()]


class UiProcess:
    """``runhistory ui --workspace W --port P``: the embedded workspace's UI on loopback, in a child process."""

    def __init__(self, workspace: Path, folder: Path) -> None:
        self.workspace = workspace
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "UiProcess":
        """Start it and wait until it answers."""
        self.folder.mkdir(parents=True, exist_ok=True)
        log = open(self.folder / "ui.log", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runhistory.cli.main", "ui", "--workspace", str(self.workspace), "--port", str(self.port)],
            env=python_env(RUNHISTORY_CONFIG_DIR=str(self.folder / "home")), stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while not _answers(f"{self.url}/api/v1/health"):
            assert self.process.poll() is None, f"runhistory ui exited {self.process.returncode}:\n{self.log()}"
            assert time.monotonic() < deadline, f"runhistory ui did not answer within {timeout} s:\n{self.log()}"
            time.sleep(0.1)
        return self

    def log(self) -> str:
        """What it printed."""
        return (self.folder / "ui.log").read_text(errors="replace")

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL after 10 s)."""
        stop_process(self.process)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False

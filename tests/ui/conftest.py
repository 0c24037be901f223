"""Fixtures of the UI tests: workspaces with runs to show, and the UI app in this process.

The browser tests (test_browser_*.py) start a real ``runhistory server`` instead and drive Debian's
Chromium through Playwright (tests/ui/browser.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from runhistory import Experiment, Workspace

SWEEP_ALPHAS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


@dataclass(frozen=True)
class Sweep:
    """Scenario 2's sweep as it is stored: the root run, its children by alpha, and their mse."""

    root_id: str
    children: dict[float, str]
    mse: dict[float, float]


def log_sweep(ws: Workspace) -> Sweep:
    """Scenario 2's sweep (examples/scenario2_export.py, without the export and its TensorBoard on
    port 6006): Ridge regressions over the diabetes data set, one child run per alpha."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_squared_error
    from sklearn.model_selection import train_test_split

    x, y = load_diabetes(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0)
    root = Experiment(ws, "export-to-tensorboard").start_logging()
    children, errors = {}, {}
    for alpha in SWEEP_ALPHAS:
        with root.child_run("alpha" + str(alpha)) as run:
            predictions = Ridge(alpha=alpha).fit(x_train, y_train).predict(x_test)
            mse = float(mean_squared_error(predictions, y_test))
            run.log("alpha", alpha)
            run.log("mse", mse)
            children[alpha], errors[alpha] = run.id, mse
        root.log("alpha", alpha)
        root.log("mse", mse)
    root.complete()
    return Sweep(root.id, children, errors)


def log_curves(ws: Workspace, experiment: str, names: tuple[str, ...], steps: int = 20) -> list[str]:
    """Finished runs named ``names`` with a ``loss`` and an ``accuracy`` curve each; their ids."""
    ids = []
    for index, name in enumerate(names):
        run = Experiment(ws, experiment).start_logging(display_name=name)
        for step in range(steps):
            run.log("loss", 1.0 / (step + 1 + index))
            run.log("accuracy", step / steps + index / 100)
        run.complete()
        ids.append(run.id)
    return ids


@pytest.fixture
def embedded(tmp_path: Path) -> Workspace:
    """An embedded workspace (SQLite and a folder) in the test's temporary folder."""
    return Workspace(f"sqlite:///{tmp_path / 'ui.db'}", tmp_path / "artifacts")


@pytest.fixture
def ui_app(embedded: Workspace) -> Iterator[object]:
    """The UI app (``create_ui_app``) over ``embedded``, without tokens (as ``runhistory ui`` serves it)."""
    from runhistory.ui.app import create_ui_app

    app = create_ui_app(
        embedded.store, embedded.artifacts, tracking_uri=embedded.tracking_uri, artifact_uri=embedded.artifact_uri
    )
    yield app
    app.state.boards.close_all()


@dataclass
class PageWatch:
    """What a page did that a test must see: dialogs it opened (an XSS would) and script errors."""

    dialogs: list[str]
    errors: list[str]


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """One Debian Chromium for the session's browser tests (fails naming scripts/chromium.sh when missing)."""
    from tests.ui.browser import CHROMIUM, NO_CHROMIUM, launch_chromium

    if not CHROMIUM.exists():
        pytest.fail(NO_CHROMIUM)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture
def watch() -> PageWatch:
    """The dialogs and script errors of the test's page."""
    return PageWatch([], [])


@pytest.fixture
def page(chromium: object, watch: PageWatch) -> Iterator[object]:
    """A new browser context and page; every dialog is recorded (and dismissed), so is every script error."""
    from tests.ui.browser import TIMEOUT_MS

    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on("dialog", lambda dialog: (watch.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda error: watch.errors.append(str(error)))
    yield page
    context.close()


@dataclass(frozen=True)
class SweepServer:
    """A server whose workspace holds scenario 2's sweep."""

    ui: object  # tests.ui.browser.UiServer
    sweep: Sweep

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return self.ui.url

    def sweep_url(self, query: str = "") -> str:
        """The runs page of the sweep's children (``parent=ROOT``), plus ``query``."""
        return f"{self.url}/experiments/export-to-tensorboard?parent={self.sweep.root_id}{query}"


@pytest.fixture(scope="session")
def sweep_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SweepServer]:
    """One ``runhistory server`` (no tokens) over scenario 2's sweep, for the session's browser tests."""
    from tests.ui.browser import start_ui_server

    ui = start_ui_server(tmp_path_factory.mktemp("sweep-server"))
    try:
        yield SweepServer(ui, log_sweep(ui.workspace))
    finally:
        ui.stop()

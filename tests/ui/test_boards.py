"""Open in TensorBoard: the UI's boards (real TensorBoard processes) and its proxy route.

The app runs in this process (FastAPI's TestClient); each board is a real TensorBoard on a
loopback port, read through ``/tensorboard/{board_id}/`` with TensorBoard's own HTTP API.
"""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi.testclient import TestClient

from runhistory import Workspace
from runhistory.core.errors import NotFoundError
from runhistory.ui.boards import BoardManager, BoardsFullError
from tests.tensorboard.conftest import poll
from tests.ui.conftest import log_curves


def csrf_headers(app: object) -> dict[str, str]:
    """The CSRF header of a session without tokens (what every page's meta tag carries)."""
    return {"X-CSRF-Token": app.state.sessions.csrf_token(None)}


def test_a_board_over_two_runs_is_served_through_the_proxy(embedded: Workspace, ui_app: object) -> None:
    first, second = log_curves(embedded, "boards", ("first", "second"))
    with TestClient(ui_app, base_url="http://127.0.0.1") as client:
        answer = client.post("/ui/api/tensorboard", json={"runs": [first, second]}, headers=csrf_headers(ui_app))
        assert answer.status_code == 200, answer.text
        url = answer.json()["url"]
        assert url.startswith("/tensorboard/") and url.endswith("/")

        runs = poll(lambda: client.get(url + "data/runs").json(), lambda names: len(names) == 2, timeout=60)
        assert sorted(runs) == ["first-1", "second-2"]
        points = client.get(url + "data/plugin/scalars/scalars", params={"run": "first-1", "tag": "loss"}).json()
        assert [point[1] for point in points] == list(range(20))
        assert [point[2] for point in points] == pytest.approx([1 / (step + 1) for step in range(20)], rel=1e-6)

        # TensorBoard's own pages post (without the UI's CSRF token): the proxy forwards the body
        series = client.post(url + "data/plugin/timeseries/timeSeries",
                             data={"requests": json.dumps([{"plugin": "scalars", "tag": "loss"}])})
        assert series.status_code == 200, series.text
        assert sorted(series.json()[0]["runToSeries"]) == ["first-1", "second-2"]

        page = client.get(url)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "tensorboard" in page.text.lower()
        assert client.get(url.rstrip("/"), follow_redirects=False).headers["location"] == url

        again = client.post("/ui/api/tensorboard", json={"runs": [second, first]}, headers=csrf_headers(ui_app))
        assert again.json()["url"] == url  # the same runs reuse their board


def test_starting_a_board_needs_the_csrf_token(embedded: Workspace, ui_app: object) -> None:
    (run_id,) = log_curves(embedded, "boards", ("only",))
    with TestClient(ui_app, base_url="http://127.0.0.1") as client:
        answer = client.post("/ui/api/tensorboard", json={"runs": [run_id]})
        assert answer.status_code == 403
        assert not ui_app.state.boards.boards()


def test_an_unknown_board_or_run_is_404(embedded: Workspace, ui_app: object) -> None:
    with TestClient(ui_app, base_url="http://127.0.0.1") as client:
        answer = client.get("/tensorboard/0123456789abcdef/data/runs")
        assert answer.status_code == 404 and "No TensorBoard" in answer.text
        missing = client.post("/ui/api/tensorboard", json={"runs": ["no-such-run"]}, headers=csrf_headers(ui_app))
        assert missing.status_code == 404 and "no-such-run" in missing.text
        empty = client.post("/ui/api/tensorboard", json={"runs": []}, headers=csrf_headers(ui_app))
        assert 400 <= empty.status_code < 500 and "at least one run" in empty.text


def test_an_idle_board_is_closed(embedded: Workspace) -> None:
    (run_id,) = log_curves(embedded, "boards", ("idle",))
    boards = BoardManager(embedded.tracking_uri, embedded.artifact_uri, idle_timeout_s=1.0)
    try:
        board_id = boards.open([run_id])
        port = boards.port_of(board_id)
        assert httpx.get(f"http://127.0.0.1:{port}/tensorboard/{board_id}/data/environment").status_code == 200
        poll(lambda: [board.board_id for board in boards.boards()], lambda ids: ids == [], timeout=30)
        with pytest.raises(NotFoundError, match="No TensorBoard"):
            boards.port_of(board_id)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/tensorboard/{board_id}/data/environment", timeout=2)
    finally:
        boards.close_all()


def test_at_most_max_boards_run_at_once(embedded: Workspace, ui_app: object) -> None:
    first, second = log_curves(embedded, "boards", ("first", "second"))
    ui_app.state.boards.close_all()
    ui_app.state.boards = BoardManager(embedded.tracking_uri, embedded.artifact_uri, max_boards=1)
    with TestClient(ui_app, base_url="http://127.0.0.1") as client:
        opened = client.post("/ui/api/tensorboard", json={"runs": [first]}, headers=csrf_headers(ui_app))
        assert opened.status_code == 200, opened.text
        full = client.post("/ui/api/tensorboard", json={"runs": [second]}, headers=csrf_headers(ui_app))
        assert full.status_code == 429 and "TensorBoards are open" in full.text
        assert len(ui_app.state.boards.boards()) == 1
        same = client.post("/ui/api/tensorboard", json={"runs": [first]}, headers=csrf_headers(ui_app))
        assert same.json() == opened.json()
    with pytest.raises(BoardsFullError):
        boards = BoardManager(embedded.tracking_uri, embedded.artifact_uri, max_boards=1)
        try:
            boards.open([first])
            boards.open([second])
        finally:
            boards.close_all()

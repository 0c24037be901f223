"""The reference scenarios of scenarios.md, run as written but for the imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from runhistory import Experiment, Workspace
from runhistory.tensorboard import Tensorboard
from tests.helpers import python_env
from tests.tensorboard.conftest import poll

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ALL_STATUSES = ["STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING", "STATUS_UNKNOWN"]


def test_scenario_2_sweep_exported_and_seen_through_tensorboard(isolated: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "scenario2_export.py")],
        env=python_env(), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    ws = Workspace.from_config()
    (root,) = Experiment(ws, "export-to-tensorboard").get_runs()
    assert root.status == "Completed"
    metrics = root.get_metrics()
    assert metrics["alpha"] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    assert len(metrics["mse"]) == 7 and all(3000 < mse < 4000 for mse in metrics["mse"])
    children = root.get_children()
    assert [child.display_name for child in children] == [f"alpha{a}" for a in metrics["alpha"]]
    for child, alpha, mse in zip(children, metrics["alpha"], metrics["mse"]):
        assert child.status == "Completed"
        assert child.get_metrics() == {"alpha": alpha, "mse": mse}

    with Tensorboard([], local_root="exportedTBlogs", port=0) as board, httpx.Client(base_url=board.url) as client:
        runs = poll(lambda: client.get("data/runs").json(), lambda r: len(r) == 8)
        assert sorted(runs) == ["export-to-tensorboard-1"] + [
            f"export-to-tensorboard-1/alpha{a}-{n}" for n, a in enumerate(metrics["alpha"], start=2)
        ]
        for tag in ("alpha", "mse"):
            points = client.get("data/plugin/scalars/scalars", params={"run": "export-to-tensorboard-1", "tag": tag})
            assert [p[1] for p in points.json()] == list(range(7))
            assert [p[2] for p in points.json()] == pytest.approx(metrics[tag], rel=1e-6)  # float32 in TensorBoard
        body = {"experimentName": "", "allowedStatuses": ALL_STATUSES, "colParams": [], "startIndex": 0, "sliceSize": 100}
        groups = client.post("data/plugin/hparams/session_groups", json=body).json()["sessionGroups"]
        sessions = {g["hparams"]["alpha"]: {m["name"]["tag"]: m["value"] for m in g["metricValues"]} for g in groups}
        assert sorted(sessions) == metrics["alpha"]
        for alpha, mse in zip(metrics["alpha"], metrics["mse"]):
            assert abs(sessions[alpha]["mse"] - mse) < 1e-3 * mse

"""The reference scenarios of scenarios.md, run as written but for the imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from runhistory import Experiment, Workspace
from tests.helpers import python_env

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_scenario_2_sweep_logs_seven_children_and_two_root_series(isolated: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "scenario2_sweep.py")],
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

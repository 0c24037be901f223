"""The offline run that ``Run.get_context()`` returns outside a job.

It is a real run on a throw-away embedded workspace in a temporary folder, so every
method works; metrics are also printed, as the script has no run history to look at.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from typing import Any, Mapping

from runhistory.experiment import Experiment
from runhistory.run import Run
from runhistory.workspace import Workspace


class OfflineRun(Run):
    """A run kept in a temporary workspace, printing what it logs."""

    @classmethod
    def create(cls) -> "OfflineRun":
        """A new offline run in its own temporary workspace (removed at exit)."""
        folder = tempfile.mkdtemp(prefix="runhistory-offline-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        experiment = Experiment(Workspace(folder), "offline")
        run = super().create_in(experiment, display_name="OfflineRun", parent_id=None, run_type="offline")
        return run  # type: ignore[return-value]

    def log(self, name: str, value: Any, description: str = "", step: int | None = None) -> None:
        print(f"Attempted to log scalar metric {name}:\n{value}")
        super().log(name, value, description, step=step)

    def log_list(self, name: str, values: Any, description: str = "") -> None:
        print(f"Attempted to log list metric {name}:\n{list(values)}")
        super().log_list(name, values, description)

    def log_row(self, name: str, description: str = "", **columns: Any) -> None:
        print(f"Attempted to log row metric {name}:\n{columns}")
        super().log_row(name, description, **columns)

    def log_table(self, name: str, value: Mapping[str, list], description: str = "") -> None:
        print(f"Attempted to log table metric {name}:\n{dict(value)}")
        super().log_table(name, value, description)

"""The local compute target: jobs run on this machine, each supervised by a detached process."""

from __future__ import annotations

import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from runhistory.compute.base import LOCAL_KIND, ComputeTarget, ProvisioningConfiguration
from runhistory.core.errors import JobConfigError

if TYPE_CHECKING:
    from runhistory.run import Run

JOBS_FOLDER_NAME = "runhistory-jobs"
SUPERVISOR_OUTPUT = "supervisor.log"


@dataclass(frozen=True)
class LocalComputeConfiguration(ProvisioningConfiguration):
    """Settings of a local target: how many jobs at once, where their working folders go, and
    whether those stay after their job ends."""

    kind: ClassVar[str] = LOCAL_KIND
    max_concurrent_runs: int | None = None
    working_directory: str | None = None
    keep_working_folders: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The settings as the workspace stores them."""
        return {
            "max_concurrent_runs": self.max_concurrent_runs,
            "working_directory": self.working_directory,
            "keep_working_folders": self.keep_working_folders,
        }


class LocalCompute(ComputeTarget):
    """Runs jobs on this machine. Each job gets a folder of its own under ``working_directory``
    (default: ``<temp>/runhistory-jobs``), named by its run id; it is removed when the job ends
    (Completed, Failed or Canceled, also when its supervisor was killed), unless the target
    was created with ``keep_working_folders=True`` (to look at what a job left, say).

    ``type`` is ``"AmlCompute"``: a local target plays the part azureml's training cluster
    plays in the code that ports here (it is what jobs are submitted to, created with
    ``provisioning_configuration``, awaited with ``wait_for_completion``), so that azureml's
    notebooks, which test ``ws.compute_targets[name].type == "AmlCompute"`` to reuse a
    registered cluster, take the same branch here. ``kind`` (``"local"``) says what it is.
    """

    kind: ClassVar[str] = LOCAL_KIND
    type: ClassVar[str] = "AmlCompute"

    @staticmethod
    def provisioning_configuration(
        max_concurrent_runs: int | None = None,
        working_directory: str | None = None,
        keep_working_folders: bool = False,
    ) -> LocalComputeConfiguration:
        """The configuration ``ComputeTarget.create`` registers; ``max_concurrent_runs=None`` means no limit."""
        if max_concurrent_runs is not None and (
            isinstance(max_concurrent_runs, bool) or not isinstance(max_concurrent_runs, int) or max_concurrent_runs < 1
        ):
            raise JobConfigError(f"max_concurrent_runs must be a positive integer or None, got {max_concurrent_runs!r}.")
        if not isinstance(keep_working_folders, bool):
            raise JobConfigError(f"keep_working_folders must be True or False, got {keep_working_folders!r}.")
        folder = None if working_directory is None else str(Path(working_directory).expanduser().resolve())
        return LocalComputeConfiguration(max_concurrent_runs, folder, keep_working_folders)

    @property
    def jobs_directory(self) -> Path:
        """The folder that holds one working folder per job."""
        configured = self._record.config.get("working_directory")
        return Path(configured) if configured else Path(tempfile.gettempdir()) / JOBS_FOLDER_NAME

    def start(self, run: "Run") -> None:
        """Start the job's supervisor in a new session (so that it outlives this process)."""
        folder = self.jobs_directory / run.id
        folder.mkdir(parents=True, exist_ok=False)  # a job's folder is never shared
        # The first heartbeat comes from here: a supervisor that dies before its own first
        # heartbeat still leaves a run that readers see as Failed.
        self.workspace.store.heartbeat(run.id)
        with open(folder / SUPERVISOR_OUTPUT, "wb") as output:
            process = subprocess.Popen(
                self.supervisor_command(run),
                cwd=folder,
                env=self.supervisor_environment(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        # Reap the supervisor when it ends, so that a long-lived submitter keeps no zombies.
        threading.Thread(target=process.wait, name=f"runhistory-reap-{process.pid}", daemon=True).start()

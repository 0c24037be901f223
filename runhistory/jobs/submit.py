"""``Experiment.submit``: snapshot, create the job run (Queued), start it on its compute target.

The submitter heartbeats the run while it uploads the snapshot (so that a submitter killed
meanwhile leaves a run that readers see end, not one Queued forever), and starts the job
only if no cancel was requested meanwhile: a job canceled while its snapshot uploads ends
Canceled without its script ever starting.
"""

from __future__ import annotations

import io
import threading
from typing import TYPE_CHECKING, Any, Mapping

from runhistory.compute.base import ComputeTarget
from runhistory.core.errors import JobConfigError
from runhistory.jobs.snapshot import collect_snapshot, upload_snapshot
from runhistory.jobs.spec import JOB_SPEC_FILE, JobSpec
from runhistory.core.validation import validate_name
from runhistory.run import Run
from runhistory.core.status import HEARTBEAT_INTERVAL_S
from runhistory.store.base import JOB_RUN_TYPE, RunStatus

if TYPE_CHECKING:
    from runhistory.experiment import Experiment
    from runhistory.jobs.config import ScriptRunConfig
    from runhistory.workspace import Workspace


def submit_job(
    experiment: "Experiment",
    config: "ScriptRunConfig",
    tags: Mapping[str, Any] | None = None,
    *,
    parent_id: str | None = None,
    display_name: str | None = None,
    properties: Mapping[str, str] | None = None,
) -> Run:
    """Submit ``config`` as a new run of ``experiment``; returns the run, Queued or already further.

    What ``ScriptRunConfig.submit_to`` (so ``experiment.submit(config)``) calls. ``parent_id``
    makes the job a child run of that run (a sweep's trials); ``display_name`` names it;
    ``properties`` are set before the job starts (a trial's hyperparameters, seen by whoever
    finds the run)."""
    config.validate()
    checked_tags = _checked_tags(tags, experiment.name)
    target = resolve_target(experiment.workspace, config.compute_target)
    target.check_can_run()
    snapshot = collect_snapshot(config.source_directory, excluded=experiment.workspace.local_folders())
    run = Run.create_in(
        experiment, display_name=display_name, parent_id=parent_id, run_type=JOB_RUN_TYPE, status=RunStatus.QUEUED, target=target.name
    )
    store = experiment.workspace.store
    try:
        if checked_tags:
            run.set_tags(checked_tags)
        if properties:
            run.add_properties(properties)
        artifacts = experiment.workspace.artifacts
        with _Heartbeat(store, run.id) as beat:
            if upload_snapshot(artifacts, run.id, snapshot, stop=beat.ended):
                artifacts.write(run.id, JOB_SPEC_FILE, io.BytesIO(_spec(config, target).to_json()))
            status = store.heartbeat(run.id)
        # Started once the submitter's heartbeats have stopped: a target that holds the run in its
        # own queue (Ray) clears the heartbeat, which a late beat would set again.
        if status != RunStatus.CANCEL_REQUESTED and status not in RunStatus.TERMINAL:
            target.start(run)
    except BaseException as exc:
        run.fail(exc, error_code="SubmissionFailed")
        raise
    if status == RunStatus.CANCEL_REQUESTED:
        store.set_status(run.id, RunStatus.CANCELED)
    run.refresh()
    return run


class _Heartbeat:
    """Heartbeats a job run from a thread while the submitter works on it; tells whether a
    cancel was requested (or the run ended) meanwhile."""

    def __init__(self, store: Any, run_id: str) -> None:
        self._store = store
        self._run_id = run_id
        self._done = threading.Event()
        self._ended = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="runhistory-submit-heartbeat", daemon=True)

    def ended(self) -> bool:
        """Whether the run was canceled (or ended) since the upload began."""
        return self._ended.is_set()

    def _loop(self) -> None:
        while not self._done.wait(HEARTBEAT_INTERVAL_S):
            try:
                status = self._store.heartbeat(self._run_id)
            except Exception:  # noqa: BLE001 - a busy store: the next beat may pass
                continue
            if status == RunStatus.CANCEL_REQUESTED or status in RunStatus.TERMINAL:
                self._ended.set()

    def __enter__(self) -> "_Heartbeat":
        self._store.heartbeat(self._run_id)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()


def resolve_target(workspace: "Workspace", target: "str | ComputeTarget") -> ComputeTarget:
    """The compute target a config names, as registered in ``workspace`` now."""
    if isinstance(target, ComputeTarget):
        if target.workspace != workspace:
            raise JobConfigError(
                f"Compute target {target.name!r} belongs to the workspace at {target.workspace.tracking_uri}, "
                f"not to the one at {workspace.tracking_uri}."
            )
        target = target.name
    return ComputeTarget(workspace, target)


def _spec(config: "ScriptRunConfig", target: ComputeTarget) -> JobSpec:
    return JobSpec(
        script=config.script,
        arguments=list(config.arguments),
        target=target.name,
        max_concurrent_runs=target.supervisor_slot_limit,
        admits_queue=target.keeps_own_queue,
        max_run_duration_seconds=config.max_run_duration_seconds,
        environment_variables=dict(config.environment),
        keep_working_folder=target.keep_working_folders,
    )


def _checked_tags(tags: Mapping[str, Any] | None, experiment_name: str) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise JobConfigError(f"tags must be a dict of names to values, got {type(tags).__name__}.")
    where = f"a new job of experiment {experiment_name!r}"
    return {validate_name(key, "tag", where): "" if value is None else str(value) for key, value in tags.items()}

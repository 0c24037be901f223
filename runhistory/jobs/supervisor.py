"""The supervisor of one job: ``python -m runhistory.jobs.supervisor RUN_ID``.

It needs nothing but ``$RUNHISTORY_TRACKING_URI`` and ``$RUNHISTORY_ARTIFACT_URI`` and a
working folder of its own (its current folder), so any compute target can start it
anywhere. It writes the run's snapshot into ``work/`` (every name of the listing checked to
stay inside it first), runs the script there with the run's identity in its environment,
and while the script runs:

- streams ``work/logs`` into the run's files ``logs/`` and the script's stdout and
  stderr into ``system_logs/driver.log``, every ``FOLLOW_INTERVAL_S``, and stores what its
  TensorBoard event files hold (scalars, text, hparams) as the run's metrics and properties
  (see :mod:`runhistory.eventlogs`);
- heartbeats every ``HEARTBEAT_INTERVAL_S`` (readers fail a job whose heartbeat stops),
  and ends the script's whole process tree when the run is canceled (CancelRequested) or
  runs too long. A watchdog process ends that tree if the supervisor itself is killed
  (see :mod:`runhistory.jobs.process`).

Right before the script starts, the run moves to Starting unless a cancel was requested:
a job canceled while Queued or while its snapshot uploaded never starts its script. At the
end it uploads ``work/outputs`` to ``outputs/`` and sets the run Completed, Failed with the
exit code and the tail of stderr, or Canceled once the script's processes are all gone;
then its working folder is removed, unless the target keeps working folders.

The run-history store (slow to import and open) is opened by the heartbeat thread while
the main thread downloads the snapshot.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from runhistory.artifacts import ArtifactStore, open_artifact_store
from runhistory.core import settings
from runhistory.core.errors import ArtifactPathError, RunHistoryError
from runhistory.core.processes import become_subreaper, reap_orphans, signal_group
from runhistory.core.status import JOB_RUN_TYPE, RunStatus
from runhistory.core.uris import HTTP_SCHEMES
from runhistory.jobs.process import describe_exit, end_job_tree, kill_job_tree, start_script
from runhistory.jobs.snapshot import download_snapshot
from runhistory.jobs.spec import (
    DRIVER_LOG,
    JOB_SPEC_FILE,
    LOGS_PREFIX,
    OUTPUTS_PREFIX,
    SUPERVISOR_LOG,
    JobSpec,
)
from runhistory.jobs.start_claim import SQLITE_PREFIX, beat, claim_start, mark_running
from runhistory.jobs.streaming import ArtifactLog, FolderFollower, OutputSignal, Tail, start_pump

if TYPE_CHECKING:
    from runhistory.eventlogs.follow import EventLogFollower
    from runhistory.store.base import RunStore


FOLLOW_INTERVAL_S = 0.2
SLOT_POLL_INTERVAL_S = 0.5
PUMP_JOIN_TIMEOUT_S = 5.0
WATCHDOG_EXIT_TIMEOUT_S = 5.0
FIRST_BEAT_WAIT_S = 30.0
CHILD_JOBS_END_S = 15.0  # how long a job's own child jobs may take to end Canceled after it ends
WORK_FOLDER = "work"
WATCHDOG_MODULE = "runhistory.jobs.watchdog"
TEMP_FOLDER_FLAG = "--temp-folder"


@dataclass(frozen=True)
class Outcome:
    """How a job ended, as the run should record it (None status: leave the run as it is).
    ``canceled_if_requested``: Canceled instead when a cancel was requested (a Ray ``stop_job``
    terminates the supervisor right after the cancel is stored)."""

    status: str | None
    error: dict[str, Any] | None = None
    canceled_if_requested: bool = False


def _open_artifacts(artifact_uri: str) -> ArtifactStore:
    """The job's artifact store; a server's files through its client (token from the environment)."""
    if artifact_uri.startswith(HTTP_SCHEMES):
        from runhistory.client.artifacts import RemoteArtifactStore  # only a job of a server pays for httpx

        return RemoteArtifactStore(artifact_uri)
    return open_artifact_store(artifact_uri)


class Supervisor:
    """Runs one job in ``folder`` and keeps its run up to date."""

    def __init__(self, run_id: str, folder: Path, tracking_uri: str, artifact_uri: str) -> None:
        self.run_id = run_id
        self.folder = folder
        self.work = folder / WORK_FOLDER
        self.tracking_uri = tracking_uri
        self.artifact_uri = artifact_uri
        self.artifacts = _open_artifacts(artifact_uri)
        self.log = ArtifactLog(self.artifacts, run_id, SUPERVISOR_LOG)
        self._store: RunStore | None = None
        self._store_lock = threading.Lock()
        self._spec: JobSpec | None = None
        self._process: subprocess.Popen | None = None
        self._watchdog: subprocess.Popen | None = None
        self._stop = threading.Event()
        self._stop_outcome: Outcome | None = None
        self._done = threading.Event()
        self._first_beat = threading.Event()
        self._target: Any = None
        self._target_lock = threading.RLock()
        self._admission: _InThread | None = None
        self._event_logs: EventLogFollower | None = None

    # --- the whole job ---

    def run(self) -> int:
        """Supervise the job to its end; the exit code of the supervisor process."""
        signal.signal(signal.SIGTERM, self._on_sigterm)
        become_subreaper()  # the script's orphans stay ours to end (see runhistory.jobs.process)
        try:
            outcome = self._supervise()
        except BaseException as exc:  # noqa: BLE001 - whatever happens, the run must end
            self.note(traceback.format_exc().rstrip())
            if self._process is not None:
                end_job_tree(self._process, self._spared())
            outcome = Outcome(RunStatus.FAILED, _supervisor_error(exc))
        self._finish(outcome)
        return 0

    def _supervise(self) -> Outcome:
        self.note(f"Supervisor of run {self.run_id} (pid {os.getpid()}) in {self.folder}")
        # The first beat comes before anything else: the store must open (imports take seconds on
        # a busy machine) before the run looks lost, and an S3 artifact store's imports would
        # only compete with it for the interpreter.
        threading.Thread(target=self._heartbeat_loop, name="runhistory-heartbeat", daemon=True).start()
        if self.tracking_uri.startswith(SQLITE_PREFIX):  # embedded: beats and the start claim need no store
            threading.Thread(target=self._early_heartbeat_loop, name="runhistory-early-heartbeat", daemon=True).start()
        else:
            self._first_beat.wait(FIRST_BEAT_WAIT_S)
        spec = self._spec = JobSpec.from_json(self.artifacts.read(self.run_id, JOB_SPEC_FILE))
        self._watchdog = self._start_watchdog(spec)
        self.work.mkdir(parents=True, exist_ok=True)
        count = download_snapshot(self.artifacts, self.run_id, self.work)
        self.note(f"Snapshot: {count} files")
        if spec.max_concurrent_runs is not None and not self._wait_for_slot(spec):
            return self._stop_outcome or Outcome(None)
        refused = self._claim_start()
        if refused is not None:
            return refused
        return self._run_script(spec)

    def _claim_start(self) -> Outcome | None:
        """Move the run to Starting right before its script starts: None when it may start, else
        how the job ends (a cancel requested until now means the script never starts)."""
        if self._stop.is_set():
            return self._stop_outcome
        status = None if self._store is not None else claim_start(self.tracking_uri, self.run_id)
        if status is None:  # not claimed without the store: the store claims it
            status = self.store.heartbeat(self.run_id)
            if status not in RunStatus.TERMINAL and status != RunStatus.CANCEL_REQUESTED:
                # The store never moves a CancelRequested run back (a cancel that came since wins).
                status = self.store.set_status(self.run_id, RunStatus.STARTING).status
        if status == RunStatus.CANCEL_REQUESTED:
            self.note("Canceled before the script started")
            return Outcome(RunStatus.CANCELED)
        if status in RunStatus.TERMINAL:
            self.note(f"The run was set {status} before the script started")
            return Outcome(None)
        return self._stop_outcome if self._stop.is_set() else None

    def _run_script(self, spec: JobSpec) -> Outcome:
        """Run the script to its end, streaming its files and output, and say how it ended."""
        started, started_at = time.monotonic(), time.time()
        process = self._process = start_script(spec.script, spec.arguments, self.work, self._script_environment(spec))
        self._tell_watchdog(f"script {process.pid}")
        self.note(f"Started python {' '.join([spec.script, *spec.arguments])} (pid {process.pid})")
        driver, stderr_tail = ArtifactLog(self.artifacts, self.run_id, DRIVER_LOG), Tail()
        output = OutputSignal()
        pumps = [start_pump(process.stdout, driver, output), start_pump(process.stderr, driver, stderr_tail, output)]
        follower = FolderFollower(self.artifacts, self.run_id, self.work / "logs", LOGS_PREFIX)
        # Running is written beside the first passes: the store may still be opening (SQLAlchemy's
        # imports), and the script's first lines must not wait for it.
        running = _InThread(lambda: self._check_status(self._mark_running(started_at)))
        self._warm_up_target(spec)
        ended = self._follow(process, spec, started, output, lambda: self._sync(follower, driver, final=False))
        self._start_admission()  # the script has ended: the next queued job may come (see _admit_next_jobs)
        running.result()  # before the run can end: its start time is the script's
        for pump in pumps:
            pump.join(PUMP_JOIN_TIMEOUT_S)
        self._sync(follower, driver, final=True)
        self._upload_outputs()
        if isinstance(ended, Outcome):
            return ended
        return _exit_outcome(spec.script, ended, time.monotonic() - started, stderr_tail.text())

    def _mark_running(self, started_at: float) -> str:
        """Set the run Running (the standard library's SQLite while the full store is not open yet); its status."""
        status = None if self._store is not None else mark_running(self.tracking_uri, self.run_id, started_at)
        return status or self.store.set_status(self.run_id, RunStatus.RUNNING, at=started_at).status

    def _finish(self, outcome: Outcome) -> None:
        """The job's processes have all ended: let the watchdog go, remove the working folder
        (before the run reads as ended, so that whoever waits for the end finds it gone), end the run."""
        self._stop_watchdog()
        if self._spec is None or not self._spec.keep_working_folder:
            shutil.rmtree(self.folder, ignore_errors=True)
        try:
            # Admitted while this run still counts in flight, so that its room is given once.
            self._start_admission().result()
            if outcome.canceled_if_requested and self.store.heartbeat(self.run_id) == RunStatus.CANCEL_REQUESTED:
                outcome = Outcome(RunStatus.CANCELED)
            if outcome.status is not None:
                self._flush_quietly(self.log)  # whoever sees the run ended finds its log complete
                record = self.store.set_status(self.run_id, outcome.status, error=outcome.error)
                self.note(f"Run {record.status}")
                self._admit_next_jobs(ended=True)
        finally:
            self._done.set()
            self._flush_quietly(self.log)
            self._seal_files_quietly()

    # --- the target's queue ---

    def _start_admission(self) -> "_InThread":
        if self._admission is None:
            self._admission = _InThread(self._admit_next_jobs)
        return self._admission

    def _admit_next_jobs(self, *, ended: bool = False) -> None:
        """A target that keeps its own queue (Ray) starts its next jobs as this one ends: admitted as
        soon as the script has ended, while this supervisor uploads and finishes, with this run's
        room counted free already (``leaving``). Ray holds the next job PENDING until this process
        exits and frees its resources, then starts it, as a job of Ray's own queue would.

        Once the run reads ended (``ended``) the queue is looked at once more: a job held after the
        first look, whose own submitter still counted this run in flight, would otherwise wait for
        an admitter that never comes. One of the two always sees the other (admissions take turns)."""
        if self._spec is None or not self._spec.admits_queue:
            return
        try:
            with self._target_lock:  # one thread at a time imports and uses Ray (see _warm_up_target)
                admitted = self._queue_target().admit_queued_runs(leaving=None if ended else self.run_id)
        except Exception as exc:  # noqa: BLE001 - the run has ended; the next submit or wait admits them
            self.note(f"Could not admit the next queued jobs of {self._spec.target}: {exc}")
            return
        if admitted:
            self.note(f"Admitted the next queued jobs of {self._spec.target}: {', '.join(admitted)}")

    def _queue_target(self) -> Any:
        """The job's compute target (imported and connected while the script runs: see _warm_up)."""
        with self._target_lock:
            if self._target is None:
                from runhistory.compute import ComputeTarget  # only a job of a queueing target pays for it
                from runhistory.workspace import Workspace

                assert self._spec is not None
                self._target = ComputeTarget(Workspace(self.tracking_uri, self.artifact_uri), self._spec.target)
            return self._target

    def _warm_up_target(self, spec: JobSpec) -> None:
        """Import and open what the end-of-job admission needs while the script runs."""
        if not spec.admits_queue:
            return

        def warm() -> None:
            try:
                with self._target_lock:  # an admission waits for it: Ray's import is not thread-safe
                    self._queue_target().prepare_admission()
            except Exception as exc:  # noqa: BLE001 - the end of the job tries again and says why
                self.note(f"Could not reach the compute target {spec.target} yet: {exc}")

        threading.Thread(target=warm, name="runhistory-warm-target", daemon=True).start()

    # --- the store, opened late ---

    @property
    def store(self) -> "RunStore":
        """The run-history store (opened on first use: importing and opening it takes ~0.3 s)."""
        with self._store_lock:  # the heartbeat thread and the main thread both ask for it
            if self._store is None:
                from runhistory.backends import open_backends  # slow: only once the job is under way

                self._store = open_backends(self.tracking_uri, self.artifact_uri).store
        return self._store

    def _wait_for_slot(self, spec: JobSpec) -> bool:
        """Wait until the target has a free slot (True), or the run ends while queued (False)."""
        assert spec.max_concurrent_runs is not None
        told = False
        while not self._stop.is_set():
            if self.store.claim_job_slot(self.run_id, spec.target, spec.max_concurrent_runs):
                return True
            if self._check_status(self.store.heartbeat(self.run_id)):
                return False
            if not told:
                self.note(f"Queued: {spec.target} runs {spec.max_concurrent_runs} jobs at most; waiting for a slot")
                self._flush_quietly(self.log)
                told = True
            time.sleep(SLOT_POLL_INTERVAL_S)
        return False

    def _heartbeat_loop(self) -> None:
        from runhistory.core.status import HEARTBEAT_INTERVAL_S

        while True:
            try:
                status = self.store.heartbeat(self.run_id)
            except Exception as exc:  # noqa: BLE001 - a busy store must not stop the job
                self.note(f"Heartbeat failed (will retry): {exc}")
                status = None
            self._first_beat.set()
            if status is not None and self._check_status(status):
                return
            if self._done.wait(HEARTBEAT_INTERVAL_S):
                return

    def _early_heartbeat_loop(self) -> None:
        """Beat with the standard library until the full store is open (on a busy machine its
        imports compete with the script's own and can take longer than the heartbeat time-out)."""
        from runhistory.core.status import HEARTBEAT_INTERVAL_S

        while not self._first_beat.is_set():
            status = beat(self.tracking_uri, self.run_id)
            if status is not None and self._check_status(status):
                return
            if self._first_beat.wait(HEARTBEAT_INTERVAL_S):
                return

    def _check_status(self, status: str) -> bool:
        """Stop the job when its run was canceled or ended from outside; True when it was."""
        if status == RunStatus.CANCEL_REQUESTED:
            self._request_stop(Outcome(RunStatus.CANCELED), "a cancel was requested")
        elif status in RunStatus.TERMINAL:
            self._request_stop(Outcome(None), f"the run was set {status} from outside")
        else:
            return False
        return True

    # --- while the script runs ---

    def _script_environment(self, spec: JobSpec) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()}
        env.update(spec.environment_variables)
        env.update(
            {
                settings.RUN_ID.name: self.run_id,
                settings.TRACKING_URI.name: self.tracking_uri,
                settings.ARTIFACT_URI.name: self.artifact_uri,
                "PYTHONUNBUFFERED": "1",  # output reaches the driver log as it is printed
            }
        )
        return env

    def _follow(
        self, process: subprocess.Popen, spec: JobSpec, started: float, output: OutputSignal, sync: Callable[[], None]
    ) -> int | Outcome:
        """Sync files until the script exits (its return code), or it is stopped or runs too
        long (the outcome). A pass runs every ``FOLLOW_INTERVAL_S``, or at once when the script
        prints after a quiet pass (its first line reaches the driver log without waiting)."""
        limit = spec.max_run_duration_seconds
        quiet = True
        while True:
            if quiet:
                returncode = _wait_for_output_or_exit(process, output)
            else:
                try:
                    returncode = process.wait(timeout=FOLLOW_INTERVAL_S)
                except subprocess.TimeoutExpired:
                    returncode = None
            quiet = not output.take()
            sync()
            reap_orphans({process.pid, *self._spared()})
            if returncode is not None:
                self._cancel_child_jobs()
                kill_job_tree(process, self._spared())  # what the script left running ends with it
                self.note(f"{spec.script} {describe_exit(returncode)}")
                if self._stop.is_set():  # it was stopped with us (Ray's stop_job signals the whole tree)
                    assert self._stop_outcome is not None
                    return self._stop_outcome
                return returncode
            if self._stop.is_set():
                self._end_job(process)
                self.note("The script's processes have all ended")
                assert self._stop_outcome is not None
                return self._stop_outcome
            if limit is not None and time.monotonic() - started > limit:
                self._end_job(process)
                message = f"The job ran longer than max_run_duration_seconds={limit:g} and was stopped."
                self.note(message)
                return Outcome(RunStatus.FAILED, {"message": message, "code": "MaxRunDurationExceeded"})

    def _end_job(self, process: subprocess.Popen) -> None:
        """Stop a job still running: the script is told first (SIGTERM: it submits no more), then
        its open child jobs are canceled while their supervisors live, then its tree ends."""
        signal_group(process.pid, signal.SIGTERM)
        self._cancel_child_jobs()
        end_job_tree(process, self._spared())

    def _cancel_child_jobs(self) -> None:
        """A job's own child jobs (a sweep's trials) do not outlive it: when its script has ended
        or is being stopped, the cancel of those still open is requested, and they get
        ``CHILD_JOBS_END_S`` to end Canceled before this job's process tree ends (on the local
        target their supervisors are in it). This ends a sweep's trials when its controller is killed."""
        try:
            self._cancel_open_children()
        except RunHistoryError as exc:  # the store is away: the job still ends as its script did
            self.note(f"Could not cancel this job's child jobs: {exc}")

    def _cancel_open_children(self) -> None:
        from runhistory.store.base import RunFilter

        open_children = [
            record.id
            for record in self.store.list_runs(RunFilter(parent_id=self.run_id))
            if record.run_type == JOB_RUN_TYPE and record.status not in RunStatus.TERMINAL
        ]
        if not open_children:
            return
        self.note(f"{len(open_children)} child jobs of this job are still open: canceling them")
        for run_id in open_children:
            self.store.set_status(run_id, RunStatus.CANCEL_REQUESTED)
        deadline = time.monotonic() + CHILD_JOBS_END_S
        while open_children and time.monotonic() < deadline:
            time.sleep(SLOT_POLL_INTERVAL_S)
            open_children = [run_id for run_id in open_children if not _ended(self.store.get_run(run_id))]

    def _sync(self, follower: FolderFollower, driver: ArtifactLog, *, final: bool) -> None:
        actions = (follower.sync, lambda: self._sync_event_logs(final), driver.flush, self.log.flush)
        for action in actions:
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - retried on the next pass
                print(f"runhistory supervisor: could not sync files of {self.run_id}: {exc}", file=sys.stderr)

    def _sync_event_logs(self, final: bool) -> None:
        """Store the new records of the script's event files as the run's metrics (once the store
        is open: the first passes never wait for it, the last one does)."""
        store = self.store if final else self._store
        if store is None:
            return
        if self._event_logs is None:
            # Imported with the store: decoding needs numpy and TensorBoard's protos.
            from runhistory.eventlogs.follow import EventLogFollower

            self._event_logs = EventLogFollower(store, self.run_id, self.work / "logs", report=self.note)
        self._event_logs.sync(final=final)

    def _upload_outputs(self) -> None:
        outputs = self.work / "outputs"
        if not outputs.is_dir():
            return
        uploaded, refused = 0, []
        for path in sorted(p for p in outputs.rglob("*") if p.is_file()):
            name = OUTPUTS_PREFIX + path.relative_to(outputs).as_posix()
            try:
                with open(path, "rb") as source:
                    self.artifacts.write(self.run_id, name, source)
            except ArtifactPathError as exc:  # one odd name never keeps the other outputs back
                refused.append(name)
                self.note(f"Left out {name}: {exc}")
                continue
            uploaded += 1
        self.note(f"Uploaded {uploaded} files from ./outputs" + (f" ({len(refused)} left out)" if refused else ""))

    # --- the watchdog ---

    def _start_watchdog(self, spec: JobSpec) -> subprocess.Popen | None:
        """Start the process that ends the script's tree (and removes the working folder) if the
        supervisor dies; None where it cannot start (the job still runs, less guarded)."""
        command = [sys.executable, "-m", WATCHDOG_MODULE, str(os.getpid())]
        if not spec.keep_working_folder:
            command.append(str(self.folder))
        try:
            return subprocess.Popen(command, stdin=subprocess.PIPE, start_new_session=True, close_fds=True)
        except OSError as exc:
            self.note(f"Could not start the watchdog (a kill -9 of this supervisor may leave processes): {exc}")
            return None

    def _spared(self) -> list[int]:
        return [] if self._watchdog is None else [self._watchdog.pid]

    def _tell_watchdog(self, line: str) -> None:
        if self._watchdog is None or self._watchdog.stdin is None:
            return
        try:
            self._watchdog.stdin.write(line.encode() + b"\n")
            self._watchdog.stdin.flush()
        except OSError:  # it died: nothing to tell
            pass

    def _stop_watchdog(self) -> None:
        if self._watchdog is None:
            return
        self._tell_watchdog("done")
        try:
            if self._watchdog.stdin is not None:
                self._watchdog.stdin.close()
            self._watchdog.wait(WATCHDOG_EXIT_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired):
            self._watchdog.kill()
            self._watchdog.wait()

    # --- stopping ---

    def _request_stop(self, outcome: Outcome, why: str) -> None:
        if not self._stop.is_set():
            self._stop_outcome = outcome
            self.note(f"Stopping the job: {why}")
            self._stop.set()

    def _on_sigterm(self, _signum: int, _frame: Any) -> None:
        message = "The job's supervisor was terminated (SIGTERM); the job was stopped."
        outcome = Outcome(RunStatus.FAILED, {"message": message, "code": "SupervisorTerminated"}, canceled_if_requested=True)
        self._request_stop(outcome, "SIGTERM")

    # --- its own log ---

    def note(self, message: str) -> None:
        """A line of the supervisor's log (``system_logs/supervisor.log``)."""
        self.log.write_line(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}")

    def _seal_files_quietly(self) -> None:
        """The job's files are complete: let the artifact store lay them out for reading (S3 compacts)."""
        try:
            self.artifacts.seal(self.run_id)
        except Exception as exc:  # noqa: BLE001 - an optimisation; the files stay readable as they are
            print(f"runhistory: could not seal the files of run {self.run_id}: {exc}", file=sys.stderr)

    @staticmethod
    def _flush_quietly(log: ArtifactLog) -> None:
        try:
            log.flush()
        except Exception as exc:  # noqa: BLE001
            print(f"runhistory supervisor: could not write its log: {exc}", file=sys.stderr)


EXIT_POLL_S = 0.02  # how soon the script's exit is seen while it is quiet


def _wait_for_output_or_exit(process: subprocess.Popen, output: OutputSignal) -> int | None:
    """Wait up to ``FOLLOW_INTERVAL_S`` for the script's output or its exit; its return code if it exited."""
    deadline = time.monotonic() + FOLLOW_INTERVAL_S
    while True:
        came = output.wait(EXIT_POLL_S)
        returncode = process.poll()
        if came or returncode is not None or time.monotonic() >= deadline:
            return returncode


class _InThread:
    """A call run in a thread of its own; :meth:`result` waits for it and raises what it raised."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self._call = call
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="runhistory-supervisor-call", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._call()
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits for the result
            self._error = exc

    def result(self) -> Any:
        """The call's value, once it returned."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _ended(record: Any) -> bool:
    return record is None or record.status in RunStatus.TERMINAL


def _exit_outcome(script: str, returncode: int, seconds: float, stderr_tail: str) -> Outcome:
    """Completed on exit code 0; else Failed with the exit code (or signal) and the end of stderr."""
    if returncode == 0:
        return Outcome(RunStatus.COMPLETED)
    message = f"The script {script} {describe_exit(returncode)} after {seconds:.1f} s."
    if stderr_tail:
        message += f" The end of its stderr:\n{stderr_tail}"
    error = {"message": message, "code": "UserError", "exit_code": returncode, "stderr_tail": stderr_tail}
    # A script killed by a signal while a cancel was requested was canceled (by Ray's stop_job, say).
    return Outcome(RunStatus.FAILED, error, canceled_if_requested=returncode < 0)


def _supervisor_error(exc: BaseException) -> dict[str, Any]:
    return {
        "message": f"The job's supervisor failed: {type(exc).__name__}: {exc}",
        "code": "SupervisorError",
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``RUN_ID [--temp-folder]``: supervise the job of the run in the current folder,
    or in a new temporary folder of its own (where the current folder is not the job's: a Ray job)."""
    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 2 or args[1:] not in ([], [TEMP_FOLDER_FLAG]):
        print(f"usage: python -m runhistory.jobs.supervisor RUN_ID [{TEMP_FOLDER_FLAG}]", file=sys.stderr)
        return 2
    tracking_uri = settings.TRACKING_URI.text() or None
    artifact_uri = settings.ARTIFACT_URI.text() or None
    if not tracking_uri or not artifact_uri:
        print(f"runhistory supervisor: ${settings.TRACKING_URI.name} and ${settings.ARTIFACT_URI.name} must be set.", file=sys.stderr)
        return 2
    exit_code = [0]
    atexit.register(_end_without_teardown, exit_code)  # registered first: runs after every other handler
    folder = Path(tempfile.mkdtemp(prefix="runhistory-job-")) if TEMP_FOLDER_FLAG in args else Path.cwd()
    exit_code[0] = Supervisor(args[0], folder, tracking_uri, artifact_uri).run()
    return exit_code[0]


def _end_without_teardown(exit_code: list[int]) -> None:
    """End the process once every other exit handler has run (runhistory's exit sequence, a
    server's spool, Ray's), before the interpreter tears its modules down: with Ray imported that
    takes ~0.1 s, and a Ray job's resources, which the next queued job waits for, free only when
    this process has exited."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code[0])


if __name__ == "__main__":
    sys.exit(main())

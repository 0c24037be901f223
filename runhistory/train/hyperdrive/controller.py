"""The controller of a sweep: runs as the sweep's job script and drives one Optuna study, ask/tell.

``main()`` reads ``sweep.json`` (written by :meth:`HyperDriveConfig.submit_to`) from its working
folder, keeps up to ``max_concurrent_runs`` trials in flight, each a child job run of the sweep
run with its parameters as ``--name value`` arguments, reports each trial's primary metric to
Optuna as it is logged (``trial.report(value, step)``, step = the point's index), cancels a
trial Optuna prunes (told PRUNED, marked ``hyperdrive.pruned``), and tells a finished one its
last primary-metric value (Completed) or FAIL (Failed, Canceled, or no metric logged).

The study is stored with Optuna's RDB storage, named by the sweep run's id: beside an embedded
workspace's database, in ``optuna.db`` (one SQLite write lock per file: Optuna's transactions
would otherwise queue behind every job's heartbeat, and Optuna's own ``alembic_version`` table
would be ours); in a PostgreSQL workspace's own database, in a schema of its own
(``runhistory_optuna``, for the same ``alembic_version``).

A server workspace offers no database to a client, so its sweep's study is a SQLite file,
``outputs/optuna.db``, in the controller's working folder: on the machine the controller runs on
(the submitting one for a local target, the head node for a Ray one) while the sweep runs, and on
the server, as the sweep run's file ``outputs/optuna.db``, once the controller's script has ended
(its supervisor uploads ``./outputs`` however the script ended: Completed, Failed, Canceled, or
killed). Read it back with ``ws.artifacts.read(sweep.id, "outputs/optuna.db")`` and
``optuna.load_study(study_name=sweep.id, storage="sqlite:///PATH")``. Until the end the server
holds what the trials are (runs, properties, metrics), not the study; a controller whose
supervisor dies too leaves none, and a controller started again would start a new one.

A cancel of the sweep reaches the controller as SIGTERM (its supervisor's): every trial still
in flight gets its cancel requested at once, from a thread (not the signal handler, which may
interrupt a store call), before the supervisor's grace ends.
"""

from __future__ import annotations

import json
import numbers
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runhistory.core.errors import RunHistoryError
from runhistory.core.extras import require
from runhistory.jobs.config import ScriptRunConfig
from runhistory.jobs.submit import submit_job
from runhistory.run import Run
from runhistory.store.base import RunStatus
from runhistory.train.hyperdrive import runconfig as rc

POLL_INTERVAL_S = 0.2  # how often running trials' statuses and metrics are read
END_WAIT_S = 10.0  # how long canceled trials may take to end before the controller exits
OPTUNA_FILE = "optuna.db"
OPTUNA_SCHEMA = "runhistory_optuna"  # a PostgreSQL workspace's schema for the studies


@dataclass
class _Trial:
    """A trial in flight: Optuna's trial, its job run, how many metric points were reported."""

    trial: Any
    run: Run
    params: dict[str, Any]
    reported: int = 0
    values: list[float] = field(default_factory=list)


class Controller:
    """Drives one sweep: the sweep run, its config (``sweep.json``) and its Optuna study."""

    def __init__(self, sweep_run: Run, config: dict[str, Any]) -> None:
        self.optuna = require("optuna", extra="hyperdrive", feature="A HyperDrive sweep")
        self.sweep_run = sweep_run
        self.config = config
        self.sampling = _load("sampling", config["sampling"])
        policy = config.get("policy")
        self.metric = config["primary_metric_name"]
        self.goal = rc.PrimaryMetricGoal.from_str(config["primary_metric_goal"])
        self.pruner = None if policy is None else _load("policy", policy).optuna_pruner(self.goal.value)
        self.trial_config = _trial_config(config["trial"])
        self.in_flight: dict[str, _Trial] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.counts = {"completed": 0, "failed": 0, "pruned": 0}
        self.best: tuple[float, str] | None = None
        self.pruned_runs: list[Run] = []  # canceled by the controller: waited for at the end

    # --- the study ---

    def open_study(self) -> Any:
        """The sweep's study (created on the first start, loaded again after a restart of the
        controller where the study outlives it: in an embedded or PostgreSQL workspace)."""
        seed = (getattr(self.sampling, "properties", None) or {}).get("seed")
        return self.optuna.create_study(
            study_name=self.sweep_run.id,
            storage=study_storage(self.optuna, self.sweep_run.workspace.tracking_uri),
            sampler=self.sampling.optuna_sampler(seed),
            pruner=self.pruner or self.optuna.pruners.NopPruner(),
            direction=self.goal.optuna_direction,
            load_if_exists=True,
        )

    # --- the loop ---

    def run(self) -> int:
        """Run the sweep to its end; the exit code (1 when no trial succeeded)."""
        study = self.open_study()
        total, concurrent = self.config["max_total_runs"], self.config["max_concurrent_runs"]
        deadline = time.monotonic() + self.config["max_duration_minutes"] * 60
        submitted = 0
        while not self.stopping.is_set():
            while len(self.in_flight) < concurrent and submitted < total and time.monotonic() < deadline:
                if self.stopping.is_set():
                    break
                self.submit(study)
                submitted += 1
            self.poll(study)
            if time.monotonic() >= deadline:
                _say(f"max_duration_minutes={self.config['max_duration_minutes']:g} reached: canceling what still runs")
                break
            if submitted >= total and not self.in_flight:
                break
            self.stopping.wait(POLL_INTERVAL_S)
        self.cancel_all(study)
        self.finish()
        return 0 if self.counts["completed"] or self.counts["pruned"] else 1

    def submit(self, study: Any) -> None:
        """Ask Optuna for a trial and submit it as a child job of the sweep (a trial whose job
        cannot be submitted is told FAIL, and the sweep goes on)."""
        trial = study.ask()
        params = self.sampling.suggest(trial)
        config = _with_parameters(self.trial_config, self.sampling.arguments(params))
        tags = {rc.TRIAL_TAG: trial.number}
        name = f"{self.sweep_run.display_name}_{trial.number}"
        # each parameter as a property of its own too: a column of the UI's runs table and an axis of its compare
        own = {key.lstrip("-"): str(value) for key, value in params.items()}
        properties = {**own, rc.HYPERPARAMETERS: json.dumps(params), rc.OPTUNA_TRIAL: str(trial.number)}
        with self.lock:
            if self.stopping.is_set():
                _tell(study, trial, state=self.optuna.trial.TrialState.FAIL)
                return
            try:
                run = submit_job(
                    self.sweep_run.experiment, config, tags, parent_id=self.sweep_run.id, display_name=name, properties=properties
                )
            except RunHistoryError as exc:
                _tell(study, trial, state=self.optuna.trial.TrialState.FAIL)
                self.counts["failed"] += 1
                _say(f"Trial {trial.number} could not be submitted: {exc}")
                return
            self.in_flight[run.id] = _Trial(trial, run, params)
        _say(f"Trial {trial.number} ({run.id}): {_arguments(params)}")

    def poll(self, study: Any) -> None:
        """Report new metric points of every trial in flight; prune, or tell the ended ones."""
        for entry in list(self.in_flight.values()):
            entry.run.refresh()
            status = entry.run.record.status  # read before the metrics: a Completed trial's are all in
            new_points = self.report(entry)
            if status in RunStatus.TERMINAL:
                self.tell_ended(study, entry, status)
            elif self.pruner is not None and new_points and entry.trial.should_prune():
                self.prune(study, entry)

    def report(self, entry: _Trial) -> int:
        """Tell Optuna the trial's primary-metric points logged since the last poll; how many came."""
        series = entry.run.get_metric_series([self.metric], start=entry.reported).get(self.metric)
        if series is None:
            return 0
        for value in series.values:
            number = _number(value)
            if number is not None:
                entry.trial.report(number, step=entry.reported)
                entry.values.append(number)
            entry.reported += 1
        return len(series.values)

    def tell_ended(self, study: Any, entry: _Trial, status: str) -> None:
        """Tell Optuna how an ended trial did: its last value when Completed, else FAIL."""
        self.in_flight.pop(entry.run.id, None)
        state = self.optuna.trial.TrialState
        if status == RunStatus.COMPLETED and entry.values:
            value = entry.values[-1]
            _tell(study, entry.trial, value)
            self.counts["completed"] += 1
            self._keep_best(value, entry.run.id)
            _say(f"Trial {entry.trial.number} ({entry.run.id}) Completed: {self.metric}={value:g}")
            return
        why = status if status != RunStatus.COMPLETED else f"Completed without logging {self.metric!r}"
        _tell(study, entry.trial, state=state.FAIL)
        self.counts["failed"] += 1
        _say(f"Trial {entry.trial.number} ({entry.run.id}) failed: {why}")

    def prune(self, study: Any, entry: _Trial) -> None:
        """Optuna pruned the trial: mark it, cancel its job, tell PRUNED."""
        self.in_flight.pop(entry.run.id, None)
        entry.run.add_properties({rc.PRUNED: "1"})
        entry.run.tag(rc.PRUNED, "1")
        entry.run.cancel()
        _tell(study, entry.trial, state=self.optuna.trial.TrialState.PRUNED)
        self.counts["pruned"] += 1
        self.pruned_runs.append(entry.run)
        _say(f"Trial {entry.trial.number} ({entry.run.id}) pruned at step {entry.reported - 1}")

    # --- the end ---

    def request_cancels(self) -> None:
        """Request the cancel of every trial in flight (the sweep is being canceled)."""
        self.stopping.set()
        with self.lock:
            entries = list(self.in_flight.values())
        for entry in entries:
            try:
                entry.run.cancel()
            except RunHistoryError as exc:
                _say(f"Could not cancel trial {entry.run.id}: {exc}")

    def cancel_all(self, study: Any) -> None:
        """Cancel what still runs, tell Optuna FAIL for it, and wait (bounded) for the trials to end."""
        self.request_cancels()
        runs = [*self.pruned_runs, *(entry.run for entry in self.in_flight.values())]
        for entry in list(self.in_flight.values()):
            _tell(study, entry.trial, state=self.optuna.trial.TrialState.FAIL)
        self.in_flight.clear()
        deadline = time.monotonic() + END_WAIT_S
        # The trials' supervisors run in this job's process tree, which ends with the controller.
        while runs and time.monotonic() < deadline:
            runs = [run for run in runs if run.get_status() not in RunStatus.TERMINAL]
            time.sleep(0.1)

    def finish(self) -> None:
        """Record the best trial on the sweep run."""
        if self.best is not None:
            value, run_id = self.best
            self.sweep_run.add_properties({rc.BEST_CHILD_RUN_ID: run_id, rc.BEST_METRIC: repr(value)})
        counts = ", ".join(f"{count} {what}" for what, count in self.counts.items())
        _say(f"Sweep done: {counts}" + ("" if self.best is None else f"; best {self.best[1]} ({self.metric}={self.best[0]:g})"))

    def _keep_best(self, value: float, run_id: str) -> None:
        better = self.best is None or (value > self.best[0] if self.goal == rc.PrimaryMetricGoal.MAXIMIZE else value < self.best[0])
        if better:
            self.best = (value, run_id)


def study_storage(optuna: Any, tracking_uri: str) -> Any:
    """The Optuna RDB storage of a workspace's sweeps. In PostgreSQL its tables live in a schema of
    their own, ``runhistory_optuna``: Optuna keeps its schema version in an ``alembic_version``
    table, which in the workspace's schema would be ours (and Optuna refuses to start on it)."""
    url = study_storage_url(tracking_uri)
    if not url.startswith("postgresql"):
        return optuna.storages.RDBStorage(url)
    import sqlalchemy as sa  # the store's own dependency

    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {OPTUNA_SCHEMA}")
    finally:
        engine.dispose()
    return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"options": f"-csearch_path={OPTUNA_SCHEMA}"}})


def study_storage_url(tracking_uri: str) -> str:
    """Where the sweep's Optuna study is kept, for a workspace's tracking URI (see the module's
    note); for a server workspace, ``./outputs/optuna.db`` of the controller's working folder
    (``./outputs`` is created)."""
    if tracking_uri.startswith("sqlite:///"):
        return "sqlite:///" + str(Path(tracking_uri[len("sqlite:///") :]).parent / OPTUNA_FILE)
    if tracking_uri.startswith("postgresql://"):
        return "postgresql+psycopg://" + tracking_uri[len("postgresql://") :]
    outputs = Path.cwd() / "outputs"
    outputs.mkdir(parents=True, exist_ok=True)
    return "sqlite:///" + str(outputs / OPTUNA_FILE)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the sweep's job script: drive the sweep of ``sweep.json`` in this folder."""
    sweep_run = Run.get_context(allow_offline=False)
    config = json.loads((Path.cwd() / rc.SWEEP_FILE).read_text())
    controller = Controller(sweep_run, config)
    canceller = threading.Thread(target=_cancel_on(controller), name="hyperdrive-cancel", daemon=True)
    canceller.start()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: _sigterm.set())
    return controller.run()


_sigterm = threading.Event()


def _cancel_on(controller: Controller) -> Any:
    def wait_and_cancel() -> None:
        _sigterm.wait()
        _say("The sweep is being canceled (SIGTERM): canceling its trials")
        controller.request_cancels()

    return wait_and_cancel


def _tell(study: Any, trial: Any, value: float | None = None, *, state: Any = None) -> None:
    """``study.tell``; a GridSampler whose grid is done calls ``study.stop()`` from it, which
    Optuna refuses outside ``optimize`` after the trial is stored: that refusal is ignored."""
    try:
        study.tell(trial, value, state=state)
    except RuntimeError as exc:
        if "Study.stop" not in str(exc):
            raise


def _load(kind: str, saved: dict[str, Any]) -> Any:
    """A sampling or policy from what ``HyperDriveConfig.to_json`` wrote (class name and JSON)."""
    from runhistory.train.hyperdrive import policy as policies, sampling as samplings

    module = samplings if kind == "sampling" else policies
    return getattr(module, saved["class"]).from_json(saved["json"])


def _trial_config(saved: dict[str, Any]) -> ScriptRunConfig:
    return ScriptRunConfig(
        saved["source_directory"],
        saved["script"],
        arguments=saved["arguments"],
        compute_target=saved["compute_target"],
        environment=saved["environment"],
        max_run_duration_seconds=saved.get("max_run_duration_seconds"),
    )


def _with_parameters(config: ScriptRunConfig, parameter_arguments: list[str]) -> ScriptRunConfig:
    """The trial's config: the sweep's script, its arguments then ``--name value`` per parameter."""
    return ScriptRunConfig(
        config.source_directory,
        config.script,
        arguments=[*config.arguments, *parameter_arguments],
        compute_target=config.compute_target,
        environment=config.environment,
        max_run_duration_seconds=config.max_run_duration_seconds,
    )


def _arguments(params: dict[str, Any]) -> str:
    return " ".join(f"{name}={value}" for name, value in params.items())


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def _say(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", file=sys.stdout, flush=True)

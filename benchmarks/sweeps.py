"""HyperDrive sweeps: what tracking each trial costs, and what early termination saves.

    .venv/bin/python benchmarks/sweeps.py                    # everything (a few minutes)
    .venv/bin/python benchmarks/sweeps.py --trials 20 --skip-policy

Each measurement runs real jobs on the local compute target in a fresh workspace in a
temporary folder, ``--concurrency`` (2) at a time:

1. overhead per trial: a Random sweep of ``--trials`` (50) trials of a script that logs its
   parameter as the primary metric and exits; against the same number of jobs of the same
   script submitted directly by a submitter that keeps as many in flight and reads their
   statuses as often as the sweep's controller does; against Optuna alone, optimizing in-process the same objective (the
   cost of the engine), and Optuna running the script as a plain subprocess per trial (the cost
   of starting Python). Wall time from submit to the last trial's end, divided by the trials.
2. early termination: the example's sweep (``examples/sweep.py``: scenario 1's network, 12
   trials over learning rate and hidden size, Random sampling with a seed) with a median
   stopping policy against no policy: wall time, trials pruned, and the best trial of each.

Progress goes to stderr; the tables to stdout, as text and then as Markdown.
"""

from __future__ import annotations

import os
import sys

# This folder holds a ``logging.py``: keep it importable for ``_common`` but behind the standard library.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.append(_HERE)

import argparse  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import _common as c  # noqa: E402

from runhistory import Experiment, Run, ScriptRunConfig, Workspace  # noqa: E402
from runhistory.compute import ComputeTarget, LocalCompute  # noqa: E402
from runhistory.store.base import RunStatus  # noqa: E402
from runhistory.train.hyperdrive.controller import POLL_INTERVAL_S  # noqa: E402

TARGET_OVERHEAD_PER_TRIAL_S = 0.3
TARGET_POLICY_SAVING = 0.25
TIMEOUT_S = 1800

QUICK = """
import sys
from runhistory import Run
Run.get_context().log("score", float(sys.argv[sys.argv.index("--x") + 1]))
"""

PLAIN = """
import sys
print(float(sys.argv[sys.argv.index("--x") + 1]))
"""

EXAMPLE_EPOCHS = 30  # as examples/sweep.py, each followed by train.py's default pause
EXAMPLE_SCRIPT = c.REPO_ROOT / "examples" / "tensorboard_demo" / "train.py"


def _script(folder: Path, name: str, code: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(code))
    return folder


def sweep_of_quick_trials(exp: Experiment, source: Path, trials: int, concurrency: int) -> dict[str, Any]:
    """Wall seconds of a sweep of ``trials`` trials of the quick script, from submit to its end."""
    from runhistory.train.hyperdrive import HyperDriveConfig, PrimaryMetricGoal, RandomParameterSampling, uniform

    config = HyperDriveConfig(
        run_config=ScriptRunConfig(source, "quick.py", compute_target="local"),
        hyperparameter_sampling=RandomParameterSampling({"x": uniform(0, 1)}, properties={"seed": 0}),
        primary_metric_name="score", primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_total_runs=trials, max_concurrent_runs=concurrency,
    )
    before = time.time()
    sweep = exp.submit(config)
    sweep.wait_for_completion(show_output=False)
    wall = time.time() - before
    children = sweep.get_children()
    statuses = [child.get_status() for child in children]
    c.progress(f"sweep of {trials} quick trials: {wall:.1f} s, {statuses.count('Completed')} Completed")
    return {"wall": wall, "trials": len(children), "completed": statuses.count("Completed"), "status": sweep.get_status()}


def direct_jobs(exp: Experiment, source: Path, trials: int, concurrency: int) -> dict[str, Any]:
    """Wall seconds of the same jobs submitted directly by a submitter that, as the controller
    does, keeps ``concurrency`` in flight and reads their statuses every ``POLL_INTERVAL_S``."""
    before = time.time()
    in_flight: list[Run] = []
    ended: list[Run] = []
    submitted = 0
    while submitted < trials or in_flight:
        while len(in_flight) < concurrency and submitted < trials:
            config = ScriptRunConfig(source, "quick.py", ["--x", str(submitted / trials)], compute_target="local")
            in_flight.append(exp.submit(config))
            submitted += 1
        for run in list(in_flight):
            if run.get_status() in RunStatus.TERMINAL:
                in_flight.remove(run)
                ended.append(run)
        if time.time() - before > TIMEOUT_S:
            raise SystemExit(f"the direct jobs did not end within {TIMEOUT_S} s")
        time.sleep(POLL_INTERVAL_S)
    wall = time.time() - before
    completed = sum(run.get_status() == "Completed" for run in ended)
    c.progress(f"{trials} jobs submitted directly, {concurrency} at a time: {wall:.1f} s, {completed} Completed")
    return {"wall": wall, "trials": trials, "completed": completed}


def optuna_in_process(trials: int) -> dict[str, Any]:
    """Optuna alone: the same objective (the parameter itself) optimized in-process."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    before = time.perf_counter()
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=trials)
    wall = time.perf_counter() - before
    c.progress(f"Optuna in-process, {trials} trials: {wall * 1000:.1f} ms")
    return {"wall": wall, "trials": trials, "completed": trials}


def optuna_subprocesses(source: Path, trials: int, concurrency: int) -> dict[str, Any]:
    """Optuna running the script (without runhistory) as a plain Python process per trial."""
    import optuna

    def objective(trial: "optuna.Trial") -> float:
        x = trial.suggest_float("x", 0, 1)
        done = subprocess.run([sys.executable, str(source / "plain.py"), "--x", repr(x)], capture_output=True, text=True, check=True)
        return float(done.stdout)

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    before = time.perf_counter()
    study.optimize(objective, n_trials=trials, n_jobs=concurrency)
    wall = time.perf_counter() - before
    c.progress(f"Optuna + a subprocess per trial, {trials} trials: {wall:.1f} s")
    return {"wall": wall, "trials": trials, "completed": trials}


def example_sweep(exp: Experiment, source: Path, policy_name: str, trials: int, concurrency: int) -> dict[str, Any]:
    """The example's sweep (Random, seeded) with a median stopping policy or none: wall time, pruned, best."""
    from runhistory.train.dnn import TensorFlow
    from runhistory.train.hyperdrive import (
        HyperDriveConfig, MedianStoppingPolicy, PrimaryMetricGoal, RandomParameterSampling, choice, loguniform,
    )

    estimator = TensorFlow(source_directory=source, compute_target="local", entry_script="train.py",
                           script_params={"--log_dir": "./logs", "--epochs": EXAMPLE_EPOCHS})
    space = {"learning_rate": loguniform(math.log(1e-3), math.log(2.0)), "hidden": choice(8, 16, 32, 64, 128)}
    policy = MedianStoppingPolicy(evaluation_interval=1, delay_evaluation=5) if policy_name == "median" else None
    config = HyperDriveConfig(
        estimator=estimator, hyperparameter_sampling=RandomParameterSampling(space, properties={"seed": 1}),
        policy=policy, primary_metric_name="accuracy/test", primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_total_runs=trials, max_concurrent_runs=concurrency,
    )
    before = time.time()
    sweep = exp.submit(config)
    sweep.wait_for_completion(show_output=False)
    wall = time.time() - before
    best = sweep.get_best_run_by_primary_metric()
    pruned = sum(_is_pruned(child) for child in sweep.get_children())
    best_value = best.get_metrics()["accuracy/test"][-1] if best is not None else None
    best_params = best.get_properties().get("hyperparameters", "") if best is not None else ""
    c.progress(f"example sweep, policy {policy_name}: {wall:.1f} s, {pruned} pruned, best {best_value} {best_params}")
    return {"wall": wall, "pruned": pruned, "best_value": best_value, "best_params": best_params}


def _is_pruned(run: Run) -> bool:
    mark = run.get_properties().get("hyperdrive.pruned", run.get_tags().get("hyperdrive.pruned"))
    return mark not in (None, "", "0", "false", "False")


def overhead_table(results: dict[str, dict[str, Any]], trials: int, concurrency: int) -> c.Table:
    table = c.Table(
        f"{trials} trials of a script that exits at once, {concurrency} at a time (local target)",
        ["how", "wall", "per trial", "above direct jobs, per trial", "completed", "target"],
        [False, True, True, True, True, False],
    )
    direct = results["direct"]["wall"] / trials
    rows = [
        ("HyperDrive sweep (runhistory)", "sweep", f"<= {TARGET_OVERHEAD_PER_TRIAL_S} s above direct jobs"),
        ("the same jobs submitted directly, as many at a time", "direct", ""),
        ("Optuna + a plain subprocess per trial", "optuna_subprocess", ""),
        ("Optuna alone, in-process", "optuna", ""),
    ]
    for name, key, target in rows:
        if key in results:
            per = results[key]["wall"] / trials
            above = f"{per - direct:+.3f} s" if key != "direct" else ""
            table.add(name, c.fmt_seconds(results[key]["wall"]), f"{per:.3f} s", above, results[key]["completed"], target)
    return table


def policy_table(results: dict[str, dict[str, Any]], trials: int) -> c.Table:
    table = c.Table(
        f"The example's sweep ({trials} trials), median stopping policy against none",
        ["policy", "wall", "saved", "pruned", "best accuracy/test", "best trial's parameters", "target"],
        [False, True, True, True, True, False, False],
    )
    none = results["none"]["wall"]
    for policy in ("none", "median"):
        one = results[policy]
        saved = f"{1 - one['wall'] / none:.0%}" if policy == "median" else ""
        target = f">= {TARGET_POLICY_SAVING:.0%} sooner, same best trial" if policy == "median" else ""
        best = "" if one["best_value"] is None else f"{one['best_value']:.4f}"
        table.add(policy, c.fmt_seconds(one["wall"]), saved, one["pruned"], best, one["best_params"], target)
    return table


def _workspace(scratch: Path) -> Experiment:
    ws = Workspace.create(scratch / "ws")
    jobs = str(scratch / "jobs")
    ComputeTarget.create(ws, "local", LocalCompute.provisioning_configuration(working_directory=jobs))
    return Experiment(ws, "bench-sweeps")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=50, help="trials of the overhead measurement")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--example-trials", type=int, default=12)
    parser.add_argument("--skip-policy", action="store_true", help="skip the example's sweeps (policy against none)")
    parser.add_argument("--skip-overhead", action="store_true")
    args = parser.parse_args()
    c.progress(c.machine_info())
    tables = []
    with c.temp_dir("rh-bench-sweeps-") as scratch:
        exp = _workspace(scratch)
        quick = _script(scratch / "quick", "quick.py", QUICK)
        _script(quick, "plain.py", PLAIN)
        if not args.skip_overhead:
            overhead = {
                "optuna": optuna_in_process(args.trials),
                "optuna_subprocess": optuna_subprocesses(quick, args.trials, args.concurrency),
                "direct": direct_jobs(exp, quick, args.trials, args.concurrency),
                "sweep": sweep_of_quick_trials(exp, quick, args.trials, args.concurrency),
            }
            tables.append(overhead_table(overhead, args.trials, args.concurrency))
        if not args.skip_policy:
            example = scratch / "example"
            example.mkdir()
            shutil.copy(EXAMPLE_SCRIPT, example)
            policy = {name: example_sweep(exp, example, name, args.example_trials, args.concurrency) for name in ("none", "median")}
            tables.append(policy_table(policy, args.example_trials))
    notes = [f"Run with `{c.command_line(__file__)}`; {c.machine_info()}."]
    c.print_report(tables, notes)


if __name__ == "__main__":
    main()

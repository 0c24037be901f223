"""Jobs on a Ray cluster: Ray Jobs alone against runhistory's Ray target, side by side on one cluster.

    .venv/bin/python benchmarks/ray_jobs.py              # everything (about 2 minutes)
    .venv/bin/python benchmarks/ray_jobs.py --quick      # fewer samples and jobs (about a minute)
    .venv/bin/python benchmarks/ray_jobs.py --only A,C   # some parts

It starts its own Ray cluster on this machine (a head with 2 CPUs, its Jobs API on loopback, from
``_common.start_ray_cluster``) and a fresh embedded workspace with a ``RayCompute`` target
``cpucluster`` (``num_cpus=1`` a job) on it, both in temporary folders removed at the end:

A. Ray Jobs alone: ``submit_job(entrypoint='python -c "print(1)"', entrypoint_num_cpus=1)``, then
   the time until the job reads RUNNING and until its first output line is in ``get_job_logs``
   (polled every 20 ms; median and p90 of ``--samples``).
B. runhistory: ``exp.submit(ScriptRunConfig(src, "print1.py", compute_target="cpucluster"))`` of a
   script printing one line, then the time until that line is in the run's
   ``system_logs/driver.log`` (ranged reads, as ``runhistory.watch.LogReader`` does) and until
   ``run.get_status()`` reads Running; the same polling. Ratios B / A. Where the time goes: when
   Ray accepted the run's job (its ``start_time``) and when Ray read it RUNNING.
C. ``--jobs`` jobs of 1 s (sleep, then print when they started and ended) through the 2-CPU cluster: the time from the first
   submit to the last end, Ray alone (all ``submit_job`` calls at once, until all SUCCEEDED) against
   runhistory (all ``exp.submit`` at once; runhistory holds what does not fit Queued and admits it
   as room frees), with checks that every runhistory job Completed, its script started once and
   Ray got one job per run, and the most jobs that ran at once.
D. log byte -> TensorBoard API: a job writes a scalar event with tensorboardX into ``./logs`` every
   0.2 s (the event's wall time = when it is written); ``Tensorboard([run])`` follows the run and
   the benchmark polls TensorBoard's HTTP API every 50 ms (as ``benchmarks/jobs.py`` does); per
   point, the time from its wall time to the API serving it (p50, p95).

A part that fails prints its error and the others still run. Progress goes to stderr; the table
to stdout, as text and then as Markdown.
"""

from __future__ import annotations

import os
import sys

# This folder holds a ``logging.py``: keep it importable for ``_common`` but behind the standard library.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.append(_HERE)

import argparse  # noqa: E402
import datetime  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import _common as c  # noqa: E402

POLL_S = 0.02
CLUSTER_CPUS = 2
TARGET_NAME = "cpucluster"
TARGET_FIRST_LINE_RATIO = 1.2
TARGET_MANY_JOBS_RATIO = 1.1
TARGET_TENSORBOARD_P95_S = 2.0
RUN_CHECKS = ("not_completed", "started_twice", "never_started", "not_one_ray_job")  # part C's lists of run ids
RAY_PRINT1 = 'python -c "print(1)"'
# Prints when it started and ended: Ray's own start_time is the submission, PENDING included.
RAY_SLEEP1 = 'python -c "import time; t = time.time(); time.sleep(1); print(t, time.time())"'

PRINT1 = "print(1)\n"

# Records when it started and ended in a file of its own (run id + pid): two files for one run id
# would mean its script started twice.
SLEEP1 = """
import os, sys, time
started = time.time()
time.sleep(1)
print(1)
name = f"{os.environ['RUNHISTORY_RUN_ID']}-{os.getpid()}"
with open(os.path.join(sys.argv[1], name), "w") as out:
    out.write(f"{started!r} {time.time()!r}")
"""

EVENTS = """
import os, sys, time
from tensorboardX import SummaryWriter
while not os.path.exists(sys.argv[2]):  # start once TensorBoard is up
    time.sleep(0.01)
writer = SummaryWriter("logs", flush_secs=1)
for step in range(int(sys.argv[1])):
    writer.add_scalar("tick", float(step), step, walltime=time.time())
    writer.flush()
    time.sleep(0.2)
writer.close()
"""


def _script(folder: Path, name: str, code: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(code))
    return folder


# --- A. Ray Jobs alone --------------------------------------------------------------------------


def ray_alone_start(client: Any, samples: int) -> dict[str, list[float]]:
    """Seconds from ``submit_job`` to RUNNING and to the first output line in ``get_job_logs``."""
    result: dict[str, list[float]] = {"submit_call": [], "running": [], "first_line": []}
    for i in range(samples):
        before = time.time()
        job_id = client.submit_job(entrypoint=RAY_PRINT1, entrypoint_num_cpus=1)
        result["submit_call"].append(time.time() - before)
        running = first_line = None
        deadline = time.monotonic() + 120
        while running is None or first_line is None:
            if running is None:
                status = str(client.get_job_status(job_id).value)
                if status in ("RUNNING", "SUCCEEDED"):  # a job may end between two polls
                    running = time.time() - before
                elif status in ("FAILED", "STOPPED"):
                    raise RuntimeError(f"Ray job {job_id} ended {status}: {client.get_job_logs(job_id)[-500:]}")
            if first_line is None and "1" in client.get_job_logs(job_id).splitlines():
                first_line = time.time() - before
            if time.monotonic() > deadline:
                raise RuntimeError(f"Ray job {job_id} did not print its line in 120 s")
            time.sleep(POLL_S)
        result["running"].append(running)
        result["first_line"].append(first_line)
        c.wait_for(lambda: str(client.get_job_status(job_id).value) == "SUCCEEDED", f"Ray job {job_id} to succeed", 120.0, POLL_S)
        c.progress(f"A {i + 1}/{samples}: RUNNING after {running * 1000:.0f} ms, first line after {first_line * 1000:.0f} ms")
    return result


# --- B. runhistory on the same cluster ----------------------------------------------------------


def runhistory_start(exp: Any, source: Path, client: Any, samples: int) -> dict[str, list[float]]:
    """Seconds from ``exp.submit`` to the line in ``system_logs/driver.log`` and to Running; and,
    to show where the time goes, to Ray accepting the run's job and to Ray reading it RUNNING."""
    from runhistory import ScriptRunConfig
    from runhistory.watch import LogReader

    _script(source, "print1.py", PRINT1)
    result: dict[str, list[float]] = {"submit_call": [], "running": [], "first_line": [], "to_ray": [], "ray_running": []}
    for i in range(samples):
        before = time.time()
        run = exp.submit(ScriptRunConfig(str(source), "print1.py", compute_target=TARGET_NAME))
        result["submit_call"].append(time.time() - before)
        reader = LogReader(run.workspace.artifacts, run.id)
        running = first_line = ray_running = None
        text = ""
        deadline = time.monotonic() + 120
        while running is None or first_line is None:
            if ray_running is None and _ray_status(client, run.id) in ("RUNNING", "SUCCEEDED"):
                ray_running = time.time() - before
            if running is None:
                status = run.get_status()
                if status in ("Running", "Completed"):  # a job may end between two polls
                    running = time.time() - before
                elif status in ("Failed", "Canceled"):
                    raise RuntimeError(f"run {run.id} ended {status}: {run.get_details().get('error')}")
            if first_line is None:
                text += reader.read_new()
                if "1" in text.splitlines():
                    first_line = time.time() - before
            if time.monotonic() > deadline:
                raise RuntimeError(f"run {run.id} did not print its line in 120 s (status {run.get_status()})")
            time.sleep(POLL_S)
        result["running"].append(running)
        result["first_line"].append(first_line)
        result["ray_running"].append(ray_running if ray_running is not None else first_line)
        status = _wait_completed(run)
        if status != "Completed":
            raise RuntimeError(f"run {run.id} ended {status}")
        result["to_ray"].append(client.get_job_info(run.id).start_time / 1000 - before)
        c.progress(f"B {i + 1}/{samples}: Running after {running * 1000:.0f} ms, first line after {first_line * 1000:.0f} ms")
    return result


def _ray_status(client: Any, submission_id: str) -> str:
    """Ray's status of a job, or "" while Ray has no such job."""
    try:
        return str(client.get_job_status(submission_id).value)
    except RuntimeError:  # the Jobs API answers 404 for a job not submitted yet
        return ""


def _wait_completed(run: Any, timeout: float = 120.0) -> str:
    """The run's terminal status, once it has one."""
    return c.wait_for(lambda: run.get_status() in ("Completed", "Failed", "Canceled") and run.get_status(),
                     f"run {run.id} to end", timeout, interval=0.05)


def _end_time(run: Any) -> float:
    """The run's recorded end (``endTimeUtc``, millisecond ISO 8601) as seconds since the epoch."""
    end = datetime.datetime.strptime(run.get_details()["endTimeUtc"], "%Y-%m-%dT%H:%M:%S.%fZ")
    return end.replace(tzinfo=datetime.timezone.utc).timestamp()


# --- C. many jobs through 2 CPUs ----------------------------------------------------------------


def _most_at_once(spans: list[tuple[float, float]]) -> int:
    """The most intervals that overlap at one instant."""
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    most = running = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


def _idle_gaps(spans: list[tuple[float, float]], slots: int) -> list[float]:
    """For each job that had to wait for room: seconds from the end that made room to its start."""
    starts = sorted(start for start, _ in spans)
    ends = sorted(end for _, end in spans)
    return [starts[k] - ends[k - slots] for k in range(slots, len(starts))]


def ray_alone_many(client: Any, jobs: int) -> dict[str, Any]:
    """Seconds from the first ``submit_job`` to the last job's end, with all submitted at once."""
    before = time.time()
    ids = [client.submit_job(entrypoint=RAY_SLEEP1, entrypoint_num_cpus=1) for _ in range(jobs)]
    submitted = time.time() - before

    def all_ended() -> list[Any] | None:
        infos = [job for job in client.list_jobs() if job.submission_id in ids]
        ended = [job for job in infos if str(job.status.value) in ("SUCCEEDED", "FAILED", "STOPPED")]
        return infos if len(ended) == jobs else None

    infos = c.wait_for(all_ended, f"{jobs} Ray jobs to end", timeout=60 + 10 * jobs, interval=0.05)
    failed = [job.submission_id for job in infos if str(job.status.value) != "SUCCEEDED"]
    if failed:
        raise RuntimeError(f"{len(failed)} of {jobs} Ray jobs did not succeed: {failed[:3]}")
    total = max(job.end_time for job in infos) / 1000 - before
    spans = [_printed_span(client.get_job_logs(job.submission_id)) for job in infos]
    c.progress(f"C Ray alone: {jobs} jobs in {total:.1f} s")
    return {"total": total, "submit_calls": submitted, "most_at_once": _most_at_once(spans),
            "idle": _idle_gaps(spans, CLUSTER_CPUS)}


def _printed_span(log: str) -> tuple[float, float]:
    """The (start, end) a RAY_SLEEP1 job printed as its last line."""
    started, ended = map(float, log.strip().splitlines()[-1].split())
    return started, ended


def runhistory_many(exp: Any, source: Path, scratch: Path, client: Any, jobs: int) -> dict[str, Any]:
    """Seconds from the first ``exp.submit`` to the last run's end, with all submitted at once;
    checks that every run Completed, its script started once and Ray got one job per run."""
    from runhistory import ScriptRunConfig

    _script(source, "sleep1.py", SLEEP1)
    marks = scratch / "sleep1-marks"
    marks.mkdir()
    before = time.time()
    runs = [exp.submit(ScriptRunConfig(str(source), "sleep1.py", [str(marks)], compute_target=TARGET_NAME))
            for _ in range(jobs)]
    submitted = time.time() - before
    statuses = [_wait_completed(run, timeout=60 + 10 * jobs) for run in runs]
    total = max(_end_time(run) for run in runs) - before
    not_completed = [f"{run.id}: {status}" for run, status in zip(runs, statuses) if status != "Completed"]
    starts: dict[str, int] = {}
    spans = []
    for mark in marks.iterdir():
        run_id = mark.name.rsplit("-", 1)[0]
        starts[run_id] = starts.get(run_id, 0) + 1
        started, ended = map(float, mark.read_text().split())
        spans.append((started, ended))
    twice = sorted(run_id for run_id, count in starts.items() if count > 1)
    never = sorted(run.id for run in runs if run.id not in starts)
    ray_ids = [job.submission_id for job in client.list_jobs()]
    ray_jobs_per_run = {run.id: ray_ids.count(run.id) for run in runs}
    not_one_ray_job = sorted(run_id for run_id, count in ray_jobs_per_run.items() if count != 1)
    c.progress(f"C runhistory: {jobs} runs in {total:.1f} s; not Completed {len(not_completed)}, started twice "
               f"{len(twice)}, never started {len(never)}, not one Ray job {len(not_one_ray_job)}")
    return {
        "total": total, "submit_calls": submitted, "most_at_once": _most_at_once(spans),
        "idle": _idle_gaps(spans, CLUSTER_CPUS), "not_completed": not_completed, "started_twice": twice, "never_started": never,
        "not_one_ray_job": not_one_ray_job,
    }


# --- D. log byte -> TensorBoard -----------------------------------------------------------------


def log_to_tensorboard(exp: Any, source: Path, scratch: Path, points: int) -> list[float]:
    """Per scalar point: seconds from its wall time to TensorBoard's HTTP API serving it."""
    from runhistory import ScriptRunConfig
    from runhistory.tensorboard import Tensorboard

    _script(source, "events.py", EVENTS)
    go = scratch / "go"
    run = exp.submit(ScriptRunConfig(str(source), "events.py", [str(points), str(go)], compute_target=TARGET_NAME))
    with Tensorboard([run], port=0) as tb:
        c.progress(f"D TensorBoard up at {tb.url}; the job starts writing")
        go.touch()
        latencies = c.scalar_latencies(tb.url, f"{exp.name}-{run.number}", "tick", points, 60 + points * 0.2)
        status = _wait_completed(run)
    if status != "Completed":
        raise RuntimeError(f"the TensorBoard job ended {status}: {run.get_details().get('error')}")
    if len(latencies) < points:
        raise RuntimeError(f"TensorBoard served {len(latencies)} of {points} points")
    c.progress(f"D log -> TensorBoard: {len(latencies)} points")
    return latencies


# --- the report ---------------------------------------------------------------------------------


def _ratio(runhistory: float | None, ray: float | None) -> float | None:
    return runhistory / ray if runhistory is not None and ray else None


def _verdict(value: float | None, limit: float, text: str) -> str:
    if value is None:
        return text
    return f"{text}: {'met' if value <= limit else 'MISSED'}"


def report(results: dict[str, Any], errors: dict[str, str], args: argparse.Namespace) -> tuple[list[c.Table], list[str]]:
    table = c.Table(
        "Jobs on a local 2-CPU Ray cluster: Ray Jobs alone against runhistory's Ray target (seconds)",
        ["figure", "Ray alone", "runhistory", "ratio", "target"],
        [False, True, True, True, False],
    )
    a, b = results.get("A", {}), results.get("B", {})

    def start_row(name: str, key: str, stat: str, target: str = "", limit: float | None = None) -> None:
        pick = c.median if stat == "median" else (lambda values: c.percentile(values, 90))
        ray = pick(a[key]) if a.get(key) else None
        ours = pick(b[key]) if b.get(key) else None
        ratio = _ratio(ours, ray)
        table.add(f"{name} ({stat})", c.fmt_seconds(ray), c.fmt_seconds(ours), c.fmt_ratio(ratio),
                  _verdict(ratio, limit, target) if limit else target)

    if a or b:
        start_row("submit -> first output line", "first_line", "median", f"<= {TARGET_FIRST_LINE_RATIO}x",
                  TARGET_FIRST_LINE_RATIO)
        start_row("submit -> first output line", "first_line", "p90")
        start_row("submit -> RUNNING / Running", "running", "median")
        start_row("submit -> RUNNING / Running", "running", "p90")
        start_row("submit call returns", "submit_call", "median")
        for name, key in (("  runhistory's job: submit -> Ray accepts it", "to_ray"),
                          ("  runhistory's job: submit -> Ray reads it RUNNING", "ray_running")):
            if b.get(key):
                table.add(f"{name} (median)", "", c.fmt_seconds(c.median(b[key])), "", "")
    many_ray, many_ours = results.get("C_ray"), results.get("C_runhistory")
    if many_ray or many_ours:
        ray_total = many_ray["total"] if many_ray else None
        our_total = many_ours["total"] if many_ours else None
        ratio = _ratio(our_total, ray_total)
        table.add(f"{args.jobs} jobs x 1 s through {CLUSTER_CPUS} CPUs, first submit -> last end", c.fmt_seconds(ray_total),
                  c.fmt_seconds(our_total), c.fmt_ratio(ratio),
                  _verdict(ratio, TARGET_MANY_JOBS_RATIO, f"<= {TARGET_MANY_JOBS_RATIO}x"))
        table.add("  a job's end -> the next job's start (median)",
                  c.fmt_seconds(c.median(many_ray["idle"])) if many_ray else None,
                  c.fmt_seconds(c.median(many_ours["idle"])) if many_ours else None,
                  c.fmt_ratio(_ratio(many_ours and c.median(many_ours["idle"]), many_ray and c.median(many_ray["idle"]))), "")
        table.add("  most jobs running at once", many_ray and many_ray["most_at_once"],
                  many_ours and many_ours["most_at_once"], "", f"{CLUSTER_CPUS} (the CPUs)")
        if many_ours:
            counts = [len(many_ours[key]) for key in RUN_CHECKS]
            table.add("  runs not Completed / started twice / never / not one Ray job", "",
                      " / ".join(map(str, counts)), "", f"0 / 0 / 0 / 0: {'met' if not any(counts) else 'MISSED'}")
    tensorboard = results.get("D")
    if tensorboard:
        p95 = c.percentile(tensorboard, 95)
        table.add("log byte -> TensorBoard API (p50)", "", c.fmt_seconds(c.median(tensorboard)), "", "")
        table.add("log byte -> TensorBoard API (p95)", "", c.fmt_seconds(p95), "",
                  _verdict(p95, TARGET_TENSORBOARD_P95_S, f"<= {TARGET_TENSORBOARD_P95_S:g}"))
    notes = [
        f"`{c.command_line(__file__)}`; {c.machine_info()}.",
        f"Ray {results.get('ray_version', '?')}; head start {results.get('head_start', float('nan')):.1f} s. "
        f"A and B: {args.samples} jobs each, one at a time, polled every {POLL_S * 1000:.0f} ms; ratio = runhistory / Ray alone.",
    ]
    if many_ours:
        for key in RUN_CHECKS:
            if many_ours[key]:
                notes.append(f"C runhistory {key.replace('_', ' ')}: {', '.join(many_ours[key][:5])}")
    notes += [f"Part {part} failed: {error}" for part, error in errors.items()]
    return [table], notes


def _run_part(part: str, errors: dict[str, str], body: Callable[[], Any]) -> Any:
    try:
        return body()
    except Exception as error:  # noqa: BLE001 - a failed part is reported; the others still run
        traceback.print_exc()
        errors[part] = f"{type(error).__name__}: {error}".splitlines()[0]
        c.progress(f"part {part} failed: {errors[part]}")
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 samples, 8 jobs, 15 TensorBoard points")
    parser.add_argument("--samples", type=int, default=None, help="jobs of parts A and B (default 10)")
    parser.add_argument("--jobs", type=int, default=None, help="jobs of part C (default 20)")
    parser.add_argument("--points", type=int, default=None, help="scalar points of part D (default 30)")
    parser.add_argument("--only", default="A,B,C,D", help="the parts to run, e.g. A,B")
    args = parser.parse_args()
    args.samples = args.samples or (5 if args.quick else 10)
    args.jobs = args.jobs or (8 if args.quick else 20)
    args.points = args.points or (15 if args.quick else 30)
    parts = {part.strip().upper() for part in args.only.split(",")}

    import ray
    from ray.job_submission import JobSubmissionClient

    c.progress(c.machine_info())
    results: dict[str, Any] = {"ray_version": ray.__version__}
    errors: dict[str, str] = {}
    with c.temp_dir("rh-bench-ray-") as scratch:
        c.progress("starting a Ray head (2 CPUs, loopback)")
        with c.Stopwatch() as head_start:
            cluster = c.start_ray_cluster(num_cpus=CLUSTER_CPUS)
        results["head_start"] = head_start.seconds
        c.progress(f"Ray head up in {head_start.seconds:.1f} s at {cluster.address}")
        with cluster:
            client = JobSubmissionClient(cluster.address)
            if "A" in parts:
                results["A"] = _run_part("A", errors, lambda: ray_alone_start(client, args.samples))
            exp = None
            if parts & {"B", "C", "D"}:
                exp = _run_part("setup", errors, lambda: _runhistory_experiment(scratch, cluster.address))
            source = scratch / "project"
            if exp is not None and "B" in parts:
                results["B"] = _run_part("B", errors, lambda: runhistory_start(exp, source, client, args.samples))
            if "C" in parts:
                results["C_ray"] = _run_part("C (Ray alone)", errors, lambda: ray_alone_many(client, args.jobs))
                if exp is not None:
                    results["C_runhistory"] = _run_part(
                        "C (runhistory)", errors, lambda: runhistory_many(exp, source, scratch, client, args.jobs))
            if exp is not None and "D" in parts:
                results["D"] = _run_part("D", errors, lambda: log_to_tensorboard(exp, source, scratch, args.points))
            c.progress("stopping the Ray cluster")
    tables, notes = report({k: v for k, v in results.items() if v is not None}, errors, args)
    c.print_report(tables, notes)


def _runhistory_experiment(scratch: Path, address: str) -> Any:
    """An experiment in a fresh embedded workspace with the Ray target ``cpucluster`` at ``address``."""
    from runhistory import Experiment, Workspace
    from runhistory.compute import ComputeTarget, RayCompute

    ws = Workspace.create(scratch / "ws")
    ComputeTarget.create(ws, TARGET_NAME, RayCompute.provisioning_configuration(address=address, num_cpus=1))
    return Experiment(ws, "raybench")


if __name__ == "__main__":
    main()

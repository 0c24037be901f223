"""Shared helpers for the benchmarks in this folder: progress, timing, tables, separate environments.

Standard library only (psycopg is imported by the one function that needs it): a benchmark
script also runs as a worker under interpreters that do not have runhistory's dependencies
(e.g. a virtual environment holding only MLflow).

A benchmark script is run as ``python benchmarks/NAME.py``, which puts this folder first
on ``sys.path``. Some names here (``logging.py``) shadow standard-library modules, so a
script calls :func:`fix_sys_path` before anything imports ``logging`` — see
``benchmarks/logging.py`` for the few lines that do it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence
from urllib.parse import urlsplit, urlunsplit

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
BENCH_STATE_DIR = REPO_ROOT / ".bench"  # gitignored: virtual environments for the tools compared against

WORKER_FLAG = "--_worker"
MLFLOW_REQUIREMENT = "mlflow>=3,<4"


# --- sys.path -----------------------------------------------------------------------------


def fix_sys_path() -> None:
    """Keep this folder importable (for ``_common``) without letting it shadow the standard library."""
    here = str(BENCH_DIR)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    sys.path.append(here)


# --- progress -----------------------------------------------------------------------------

# Workers started by run_worker inherit the start time, so their lines continue the same clock.
_T0 = float(os.environ.setdefault("RH_BENCH_T0", repr(time.time())))


def progress(message: str) -> None:
    """One progress line on stderr, with the seconds since the benchmark started."""
    print(f"[{time.time() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


# --- timing -------------------------------------------------------------------------------


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds``."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __enter__(self) -> "Stopwatch":
        self._start = time.perf_counter()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100), nearest-rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def per_call_ns_in_batches(call: Callable[[Any], Any], items: Sequence[Any], batch: int = 1000) -> list[float]:
    """Call ``call(item)`` for every item; return nanoseconds per call of each batch of ``batch`` calls.

    Timing every call would cost more than the calls; timing batches and dividing does not.
    The loop is the caller's own kind of loop (a ``for`` over a list slice), so its overhead
    is part of what a user's loop pays too.
    """
    out = []
    clock = time.perf_counter_ns
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        t0 = clock()
        for item in chunk:
            call(item)
        out.append((clock() - t0) / len(chunk))
    return out


# --- temporary folders and separate environments ---------------------------------------------


@contextlib.contextmanager
def temp_dir(prefix: str = "rh-bench-") -> Iterator[Path]:
    """A fresh temporary folder, removed afterwards (set ``RH_BENCH_KEEP=1`` to keep it)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        if os.environ.get("RH_BENCH_KEEP"):
            progress(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def ensure_venv(name: str, requirements: Sequence[str], import_check: str) -> Path:
    """The Python of ``.bench/<name>`` (a virtual environment with ``requirements``), created on first use.

    A marker file records a finished install, so an interrupted install is resumed instead
    of reused half done. Returns the venv's ``bin/python``.
    """
    venv = BENCH_STATE_DIR / name
    python = venv / "bin" / "python"
    marker = venv / ".installed.json"
    wanted = sorted(requirements)
    if python.exists() and marker.exists():
        try:
            if json.loads(marker.read_text()).get("requirements") == wanted:
                check = subprocess.run([str(python), "-c", f"import {import_check}"], capture_output=True)
                if check.returncode == 0:
                    progress(f"reusing {venv}")
                    return python
        except ValueError:
            pass
    if not python.exists():
        progress(f"creating virtual environment {venv}")
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    progress(f"pip install {' '.join(wanted)} into {venv} (first run only; may take a few minutes)")
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *wanted], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if pip.returncode != 0:
        print(pip.stdout, file=sys.stderr)
        raise RuntimeError(f"pip install {' '.join(wanted)} into {venv} failed (exit {pip.returncode})")
    marker.write_text(json.dumps({"requirements": wanted}) + "\n")
    return python


def run_worker(
    script: str | os.PathLike,
    worker: str,
    args: dict[str, Any],
    *,
    python: str | os.PathLike | None = None,
    cwd: str | os.PathLike | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Run ``worker(**args)`` of ``script`` in a separate process and return its JSON result.

    The script must end with ``worker_main(globals())`` guarded by ``__main__`` (see
    :func:`worker_main`). ``python`` defaults to this interpreter; give another venv's to
    run the worker with other packages. The worker's stderr passes through (progress);
    its result travels in a temporary file, so whatever a library prints does not matter.
    """
    with tempfile.TemporaryDirectory(prefix="rh-bench-worker-") as scratch:
        result_file = Path(scratch) / "result.json"
        command = [
            str(python or sys.executable),
            str(Path(script).resolve()),
            WORKER_FLAG,
            worker,
            json.dumps(args),
            str(result_file),
        ]
        full_env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
        completed = subprocess.run(
            command, cwd=cwd or scratch, env=full_env, stdout=subprocess.PIPE, text=True, timeout=timeout
        )
        if completed.returncode != 0 or not result_file.exists():
            tail = "\n".join(completed.stdout.splitlines()[-20:])
            raise RuntimeError(f"worker {worker!r} failed (exit {completed.returncode}); its stdout ended:\n{tail}")
        return json.loads(result_file.read_text())


def worker_main(namespace: dict[str, Any]) -> bool:
    """If this process was started by :func:`run_worker`, run the named worker and return True."""
    if len(sys.argv) != 5 or sys.argv[1] != WORKER_FLAG:
        return False
    _, _, name, args, result_file = sys.argv
    result = namespace[name](**json.loads(args))
    Path(result_file).write_text(json.dumps(result))
    return True


def mlflow_python() -> Path:
    """The Python of ``.bench/mlflow-venv`` (MLflow 3), created on first use."""
    return ensure_venv("mlflow-venv", [MLFLOW_REQUIREMENT], "mlflow")


def quiet_mlflow() -> None:
    """Keep MLflow, alembic and SQLAlchemy from logging below WARNING (in an MLflow worker)."""
    import logging  # here, not at the top: before a script fixes sys.path it is benchmarks/logging.py

    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)


# --- servers and a throw-away PostgreSQL ------------------------------------------------------


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(check: Callable[[], Any], what: str = "a condition", timeout: float = 60.0, interval: float = 0.002) -> Any:
    """Call ``check`` every ``interval`` seconds until it returns something true (returned), or
    RuntimeError after ``timeout`` seconds naming ``what`` was waited for."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def wait_http(url: str, timeout: float = 120) -> None:
    """Block until ``url`` answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer in {timeout:.0f} s")


def start_server(command: list[str], health_url: str, log: Path) -> subprocess.Popen:
    """Start a server in its own process group and wait until it answers."""
    output = open(log, "wb")  # noqa: SIM115 - stays open for the server's lifetime
    process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(health_url)
    except TimeoutError:
        stop_server(process)
        raise RuntimeError(f"{command[0]} did not start; its output: {log.read_text()[-2000:]}") from None
    return process


def stop_server(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group, then SIGKILL."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def start_runhistory_server(db: Path, artifacts: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """``runhistory server`` on the SQLite file ``db``, on a free loopback port: the process and its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "runhistory.cli.main", "server", "--workspace", f"sqlite:///{db}",
        "--artifacts", str(artifacts), "--port", str(port),
    ]
    return start_server(command, f"{url}/api/v1/health", log), url


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """The URI of a PostgreSQL database the user may create databases beside.

    ``$RUNHISTORY_BENCH_POSTGRES_URI`` when set, else a throw-away local server started with
    ``scripts/postgres.sh`` (as the tests do; fsync off) and removed afterwards.
    """
    given = os.environ.get("RUNHISTORY_BENCH_POSTGRES_URI")
    if given:
        yield given
        return
    script = str(REPO_ROOT / "scripts" / "postgres.sh")
    folder = tempfile.mkdtemp(prefix="rh-bench-postgres-")
    try:
        started = subprocess.run(["bash", script, "start", folder], capture_output=True, text=True)
        if started.returncode != 0:
            reason = started.stderr.strip()[-1000:]
            raise RuntimeError(f"scripts/postgres.sh start failed (exit {started.returncode}): {reason}")
        yield started.stdout.strip()
    finally:
        subprocess.run(["bash", script, "stop", folder], capture_output=True)


def fresh_postgres_database(base_uri: str, name: str) -> str:
    """Create database ``name`` beside ``base_uri``'s and return its URI."""
    import psycopg  # not the standard library: only runhistory's own venv calls this

    with psycopg.connect(base_uri, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(base_uri)._replace(path="/" + name))


def machine_info() -> str:
    """A one-line description of this machine and Python, for a benchmark's report."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPUs; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; SQLite {sqlite3.sqlite_version}"
    )


# --- formatting and tables ---------------------------------------------------------------


def fmt_int(n: float | None) -> str:
    return "" if n is None else f"{n:,.0f}"


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return ""
    return f"{s:.3f}" if s < 100 else f"{s:.1f}"


def fmt_rate(points_per_s: float | None) -> str:
    """Points per second, in a readable unit."""
    if points_per_s is None:
        return ""
    if points_per_s >= 1e6:
        return f"{points_per_s / 1e6:.2f} M"
    if points_per_s >= 1e3:
        return f"{points_per_s / 1e3:.1f} k"
    return f"{points_per_s:.0f}"


def fmt_us(us: float | None) -> str:
    if us is None:
        return ""
    return f"{us:.3f}" if us < 10 else f"{us:,.1f}"


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return ""
    if ratio >= 100:
        return f"{ratio:,.0f}x"
    return f"{ratio:.1f}x" if ratio >= 10 else f"{ratio:.2f}x"


class Table:
    """A small table rendered as aligned plain text or as Markdown."""

    def __init__(self, title: str, columns: Sequence[str], right_align: Sequence[bool] | None = None) -> None:
        self.title = title
        self.columns = list(columns)
        self.right = list(right_align) if right_align is not None else [i > 0 for i in range(len(columns))]
        self.rows: list[list[str]] = []

    def add(self, *cells: Any) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(["" if cell is None else str(cell) for cell in cells])

    def text(self) -> str:
        widths = [max(len(row[i]) for row in [self.columns, *self.rows]) for i in range(len(self.columns))]

        def line(cells: Sequence[str]) -> str:
            return "  ".join(
                cell.rjust(width) if right else cell.ljust(width)
                for cell, width, right in zip(cells, widths, self.right)
            ).rstrip()

        rule = "  ".join("-" * width for width in widths)
        return "\n".join([self.title, rule, line(self.columns), rule, *(line(row) for row in self.rows), rule])

    def markdown(self) -> str:
        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

        align = "| " + " | ".join("---:" if right else "---" for right in self.right) + " |"
        return "\n".join([f"**{self.title}**", "", line(self.columns), align, *(line(row) for row in self.rows)])


def command_line(script: str) -> str:
    """How this benchmark was started, relative to the repository root (for its report)."""
    words = [os.path.relpath(sys.executable, REPO_ROOT), os.path.relpath(script, REPO_ROOT), *sys.argv[1:]]
    return " ".join(shlex.quote(word) for word in words)


def print_report(tables: Sequence[Table], notes: Sequence[str]) -> None:
    """The tables and notes as plain text, then the same in Markdown (notes may hold `code`)."""
    for table in tables:
        print(table.text())
        print()
    for note in notes:
        print(note.replace("`", ""))
    print()
    print("Markdown:")
    print()
    for table in tables:
        print(table.markdown())
        print()
    print("\n\n".join(notes))


# --- a local Ray cluster (tests/ray_cluster.py re-exports these) -----------------------------
#
# Every node is `ray start --block` as a child in its own session, with ports of its own, so two
# test sessions or a benchmark at the same time do not collide; it is stopped by its own
# processes, never by `ray stop` (which ends every Ray process on the machine). The Jobs API
# listens on 127.0.0.1 only; Ray itself turns `--node-ip-address=127.0.0.1` into this machine's
# address (its `resolve_ip_for_localhost`), so the nodes list that address. Ray and psutil are
# imported inside the functions: this module stays importable without them.

# Every node's environment. The GCS marks a node dead after period * threshold of failed health
# checks (Ray's defaults: 3 s and 5 failures, after 5 s of initial delay); these make a lost node
# noticed in about 3 s. Without the drain timeout of 0, a SIGTERMed node first drains for 30 s.
RAY_NODE_ENV = {
    "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
    # A dead node is seen within seconds (its raylet refuses at once); a live one that is slow to
    # answer on a loaded machine (a shared 2-CPU box under a test suite) is not taken for dead.
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "5000",
    "RAY_health_check_failure_threshold": "5",
    "RUNTIME_ENV_RETRY_TIMES": "1",  # a runtime_env that cannot be set up fails at its first try (3 by default)
}
RAY_WORKER_PORT_BLOCK = 200  # ports a node's Ray workers (one per worker process) may bind
RAY_WORKER_PORT_RANGE = (20000, 32000)  # below Linux's ephemeral range, where free_port's ports come from
RAY_PORT_LOCK_DIR = Path(tempfile.gettempdir()) / "rh-ray-ports"
RAY_OBJECT_STORE_BYTES = 200 * 1024 * 1024  # the default (30% of RAM) would be far more than the jobs need
RAY_BLOCKING_LINE = "This command will now block forever"  # what `ray start --block` prints once it has started all
RAY_NODE_TIMEOUT_S = 90.0
RAY_STOP_GRACE_S = 10.0

_WATCHDOG = r"""
import os, shutil, sys, time
import psutil
owner, temp_dir = int(sys.argv[1]), sys.argv[2]
pids_file = os.path.join(temp_dir, "node-pids")
while os.path.isdir(temp_dir) and psutil.pid_exists(owner):
    time.sleep(1)
if not os.path.isdir(temp_dir):
    sys.exit(0)  # the cluster was stopped by its owner
doomed = []
for line in open(pids_file).read().split():
    try:
        node = psutil.Process(int(line))
        doomed += [node, *node.children(recursive=True)]
    except psutil.Error:
        pass
for process in doomed:
    try:
        process.kill()
    except psutil.Error:
        pass
psutil.wait_procs(doomed, timeout=10)
shutil.rmtree(temp_dir, ignore_errors=True)
"""


def _free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports nobody listens on now (all held open while picking)."""
    with contextlib.ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]


def _reserve_worker_ports() -> tuple[int, int, Any]:
    """A block of ports for one node's Ray workers: (first, last, the lock file that reserves it).

    The block is reserved by an exclusive ``flock`` on a file of its own, held while the node
    lives (and released by the kernel if this process dies), so two launchers never share one.
    """
    import fcntl
    import random

    RAY_PORT_LOCK_DIR.mkdir(exist_ok=True)
    low, high = RAY_WORKER_PORT_RANGE
    starts = list(range(low, high - RAY_WORKER_PORT_BLOCK + 1, RAY_WORKER_PORT_BLOCK))
    random.shuffle(starts)
    for start in starts:
        lock = open(RAY_PORT_LOCK_DIR / f"{start}.lock", "w")  # noqa: SIM115 - held while the node lives
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        return start, start + RAY_WORKER_PORT_BLOCK - 1, lock
    raise RuntimeError(f"no free block of {RAY_WORKER_PORT_BLOCK} Ray worker ports in {low}-{high} ({RAY_PORT_LOCK_DIR})")


def _ray_env() -> dict[str, str]:
    """The environment of ``ray start``: this one's without a workspace or Ray address of the
    launcher's (job drivers inherit it), this venv's bin first on PATH (job entrypoints run
    ``python -m ...`` through the node's PATH), no usage stats, a quick health check."""
    bin_dir = str(Path(sys.executable).parent)
    path = os.pathsep.join([bin_dir, *(p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != bin_dir)])
    env = {key: value for key, value in os.environ.items() if not key.startswith("RUNHISTORY_") and key != "RAY_ADDRESS"}
    return {**env, "PATH": path, "RAY_USAGE_STATS_ENABLED": "0", **RAY_NODE_ENV}


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


@dataclasses.dataclass
class RayNode:
    """One ``ray start --block`` process (a session of its own) and what it started."""

    process: subprocess.Popen
    log: Path  # the output of `ray start`
    node_id: str = ""  # Ray's id of the node, once the head lists it
    port_lock: Any = dataclasses.field(default=None, repr=False)  # reserves the node's worker ports

    def processes(self) -> list[Any]:
        """Every live process of this node: its process group and every descendant (Ray starts
        workers in process groups and job drivers in sessions of their own)."""
        import psutil

        found: dict[int, psutil.Process] = {}
        try:
            root = psutil.Process(self.process.pid)
            for process in [root, *root.children(recursive=True)]:
                found[process.pid] = process
        except psutil.NoSuchProcess:
            pass
        for process in psutil.process_iter():
            try:
                if process.pid not in found and os.getpgid(process.pid) == self.process.pid:
                    found[process.pid] = process
            except (OSError, psutil.Error):
                pass
        return list(found.values())

    def kill(self) -> None:
        """The machine's loss: SIGKILL every process of this node at once."""
        import psutil

        doomed = self.processes()
        for process in doomed:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(doomed, timeout=RAY_STOP_GRACE_S)
        self._reap()

    def stop(self, grace: float = RAY_STOP_GRACE_S) -> None:
        """Graceful: SIGTERM the process group, wait up to ``grace`` seconds, SIGKILL what is left."""
        import psutil

        doomed = self.processes()  # before the SIGTERM: once parents exit, descendants are lost from view
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        _gone, alive = psutil.wait_procs(doomed, timeout=grace)
        for process in alive:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(alive, timeout=grace)
        self._reap()
        # A node stopped while it starts may have spawned a process after the snapshot.
        for _ in range(3):
            if not self.processes():
                break
            self.kill()

    def is_running(self) -> bool:
        return self.process.poll() is None

    def is_started(self) -> bool:
        """Whether ``ray start`` has started every process of the node and now blocks (a SIGTERM
        while it still starts some leaves it waiting for the grace period)."""
        return RAY_BLOCKING_LINE in _tail(self.log)

    def _reap(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=RAY_STOP_GRACE_S)
        if self.port_lock is not None:
            self.port_lock.close()
            self.port_lock = None


@dataclasses.dataclass
class RayCluster:
    """A Ray head on this machine, its Jobs API on loopback, and the worker nodes added to it."""

    address: str  # the dashboard / Jobs API, "http://127.0.0.1:D"
    gcs_address: str  # "127.0.0.1:P", for `ray start --address`
    temp_dir: Path
    head: RayNode
    workers: list[RayNode] = dataclasses.field(default_factory=list)

    def __enter__(self) -> "RayCluster":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def nodes(self) -> list[Any]:
        """Ray's ``NodeState`` of every node the head knows, dead ones included."""
        from ray.util.state import list_nodes

        return list_nodes(address=self.address, limit=1000, timeout=10)

    def alive_nodes(self) -> int:
        """How many nodes the head lists ALIVE."""
        return sum(node.state == "ALIVE" for node in self.nodes())

    def node_state(self, node: RayNode) -> str:
        """The head's state of ``node`` ("ALIVE", "DEAD"), or "" while the head does not list it."""
        return next((n.state for n in self.nodes() if n.node_id == node.node_id), "")

    def add_worker(self, num_cpus: int = 1, resources: dict[str, float] | None = None) -> RayNode:
        """``ray start --address=GCS --block --num-cpus=N --resources=JSON`` on this machine;
        returns once the head lists the new node ALIVE."""
        known = {n.node_id for n in self.nodes()}
        index = len(self.workers) + 1
        extra = ["--address", self.gcs_address, "--num-cpus", str(num_cpus)]
        if resources:
            extra += ["--resources", json.dumps(resources)]
        node = _start_ray_node(extra, self.temp_dir, self.temp_dir / f"worker-{index}.log", dashboard=False)
        self.workers.append(node)
        deadline = time.monotonic() + RAY_NODE_TIMEOUT_S
        while True:
            if not node.is_running():
                raise RuntimeError(f"Ray worker node {index} exited {node.process.returncode}; its output: {_tail(node.log)}")
            with contextlib.suppress(Exception):  # the state API answers errors while a node registers
                fresh = [n for n in self.nodes() if n.node_id not in known and n.state == "ALIVE"]
                if fresh and node.is_started():
                    node.node_id = fresh[0].node_id
                    return node
            if time.monotonic() > deadline:
                node.kill()
                raise RuntimeError(f"Ray worker node {index} was not ALIVE at {self.address} after {RAY_NODE_TIMEOUT_S:g} s")
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop every node, the head last, and remove the temporary folder."""
        for node in [*self.workers, self.head]:
            node.stop()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _start_ray_node(extra: list[str], temp_dir: Path, log: Path, *, dashboard: bool) -> RayNode:
    """Start ``ray start --block`` with ports of its own; ``extra`` says head or worker and its size."""
    first, last, port_lock = _reserve_worker_ports()
    names = ["--node-manager-port", "--object-manager-port", "--metrics-export-port",
             "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--runtime-env-agent-port"]
    ports = [word for pair in zip(names, map(str, _free_ports(len(names)))) for word in pair]
    command = [
        str(Path(sys.executable).parent / "ray"), "start", "--block", *extra,
        "--node-ip-address", "127.0.0.1", "--temp-dir", str(temp_dir),
        "--min-worker-port", str(first), "--max-worker-port", str(last), *ports,
        "--object-store-memory", str(RAY_OBJECT_STORE_BYTES), "--disable-usage-stats",
    ]
    if dashboard:
        command += ["--dashboard-host", "127.0.0.1"]
    with open(log, "wb") as output:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                   env=_ray_env(), cwd=temp_dir, start_new_session=True)
    with open(temp_dir / "node-pids", "a") as pids:
        pids.write(f"{process.pid}\n")
    return RayNode(process, log, port_lock=port_lock)


def _start_watchdog(temp_dir: Path) -> None:
    """A process of its own that kills the cluster's nodes if this process dies without stopping them."""
    subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(temp_dir)],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)


def _wait_for_jobs_api(address: str, head: RayNode) -> None:
    from ray.job_submission import JobSubmissionClient

    deadline = time.monotonic() + RAY_NODE_TIMEOUT_S
    while True:
        if not head.is_running():
            raise RuntimeError(f"Ray head exited {head.process.returncode}; its output: {_tail(head.log)}")
        try:
            JobSubmissionClient(address).list_jobs()
            return
        except Exception:  # noqa: BLE001 - connection refused, then 5xx while the dashboard starts
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Ray head's Jobs API at {address} did not answer in {RAY_NODE_TIMEOUT_S:g} s; "
                                   f"its output: {_tail(head.log)}") from None
            time.sleep(0.2)


def _wait_for_head_node(cluster: RayCluster) -> str:
    """The head's node id, once the head lists itself ALIVE and `ray start` blocks (a few seconds
    after the Jobs API answers)."""
    deadline = time.monotonic() + RAY_NODE_TIMEOUT_S
    while True:
        if not cluster.head.is_running():
            raise RuntimeError(f"Ray head exited {cluster.head.process.returncode}; its output: {_tail(cluster.head.log)}")
        with contextlib.suppress(Exception):  # the state API fails while the GCS has no node yet
            for node in cluster.nodes():
                if node.is_head_node and node.state == "ALIVE" and cluster.head.is_started():
                    return node.node_id
        if time.monotonic() > deadline:
            raise RuntimeError(f"the Ray head at {cluster.address} did not list itself ALIVE in {RAY_NODE_TIMEOUT_S:g} s")
        time.sleep(0.1)


def start_ray_cluster(num_cpus: int = 2) -> RayCluster:
    """A Ray head with ``num_cpus`` CPUs, its Jobs API on 127.0.0.1; returns once that API answers
    and the head lists itself ALIVE (about 4 to 6 s here).

    Stop it with ``cluster.stop()`` (or ``with start_ray_cluster() as cluster:``); should this
    process die first, a watchdog process kills the cluster's nodes and removes its folder.
    """
    # Short: Ray's socket paths (temp_dir/session_.../sockets/...) must stay under 108 bytes.
    temp_dir = Path(tempfile.mkdtemp(prefix="rh-ray-", dir="/tmp"))
    _start_watchdog(temp_dir)
    gcs_port, dashboard_port, client_port = _free_ports(3)
    head = _start_ray_node(
        ["--head", "--num-cpus", str(num_cpus), "--port", str(gcs_port), "--dashboard-port", str(dashboard_port),
         "--ray-client-server-port", str(client_port), "--include-dashboard", "true"],
        temp_dir, temp_dir / "head.log", dashboard=True,
    )
    cluster = RayCluster(f"http://127.0.0.1:{dashboard_port}", f"127.0.0.1:{gcs_port}", temp_dir, head)
    try:
        _wait_for_jobs_api(cluster.address, head)
        head.node_id = _wait_for_head_node(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def scalar_latencies(tb_url: str, tb_run: str, tag: str, points: int, timeout: float) -> list[float]:
    """Poll TensorBoard's scalars API every 50 ms until it serves ``points`` points of ``tag`` of
    ``tb_run`` (or ``timeout`` seconds pass); per point, the seconds from its wall time to the poll
    that first served it."""
    import urllib.error

    query = urllib.parse.urlencode({"run": tb_run, "tag": tag})
    url = f"{tb_url.rstrip('/')}/data/plugin/scalars/scalars?{query}"
    seen: set[int] = set()
    latencies: list[float] = []
    deadline = time.monotonic() + timeout
    while len(seen) < points and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                served = json.load(response)
        except urllib.error.HTTPError:
            served = []  # the run or tag is not loaded yet
        now = time.time()
        for wall, step, _value in served:
            if step not in seen:
                seen.add(step)
                latencies.append(now - wall)
        time.sleep(0.05)
    return latencies


def print_table(table: "Table") -> None:
    """A benchmark's figures as text, then as Markdown (for the README), then the machine."""
    print(table.text())
    print()
    print(table.markdown())
    print()
    print(f"Machine: {machine_info()}")


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

"""Helpers for tests that start real child processes."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, Callable, Iterator, TypeVar

T = TypeVar("T")

ENV_VARS = ("RUNHISTORY_TRACKING_URI", "RUNHISTORY_ARTIFACT_URI", "RUNHISTORY_RUN_ID", "RUNHISTORY_FLUSH_INTERVAL")


def python_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python process: this one's, without runhistory's variables, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if key not in ENV_VARS}
    env.update(extra)
    return env


def start_python(code: str, *, piped_stdin: bool = False, **env: str) -> subprocess.Popen:
    """Start ``python -c code`` (dedented) with stdout and stderr piped (and stdin, to talk to it)."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=python_env(**env),
        stdin=subprocess.PIPE if piped_stdin else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_python(code: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """Run ``python -c code`` to the end; fails the test with its stderr if it exits non-zero."""
    process = start_python(code, **env)
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"child exited {process.returncode}:\n{err}"
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def port_is_free(port: int) -> bool:
    """True when 127.0.0.1:port can be bound as a server binds it (SO_REUSEADDR: TIME_WAIT is no owner)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_until(check: Callable[[], T], timeout: float, interval: float = 0.05, what: str = "") -> T:
    """Call ``check`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or check}")
        time.sleep(interval)


@contextlib.contextmanager
def served(app: Any, on_stopped: Callable[[], None] | None = None) -> Iterator[str]:
    """Serve an ASGI ``app`` with uvicorn on a free loopback port, in a thread; yields its base URL.
    On exit the server is told to stop (within ~0.1 s) without waiting for it; ``on_stopped`` runs
    once it has, in a thread of its own."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the in-process server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True  # the next test need not wait for it
        if on_stopped is not None:
            threading.Thread(target=lambda: (thread.join(10), on_stopped()), daemon=True).start()


def stop_process(process: subprocess.Popen | None) -> None:
    """End a child process of a test: SIGTERM, then SIGKILL after 10 s."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

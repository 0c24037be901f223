"""Run the real TensorBoard (the ``tensorboard`` package) as a child process.

:class:`TensorboardServer` starts ``python -m tensorboard.main`` in its own session (process
group), drains its output on a thread, waits until it answers HTTP, and stops the whole process
group (TensorBoard and its Rust data server) on :meth:`~TensorboardServer.stop`, when the
object is garbage-collected, and at interpreter exit.

TensorBoard never outlives the process that started it (its owner), however that process
ends (``kill -9``, ``os._exit``, a signal): a watchdog thread in TensorBoard's own process
waits for the owner's exit (a pidfd, else polling its pid and start time) and then ends
TensorBoard's process group, after removing the log folder when it is a temporary copy.
The kernel's parent-death signal (``PR_SET_PDEATHSIG``) is not used: it fires when the
*thread* that started the child ends, which would stop a TensorBoard started from a thread
that has finished while its process lives on.
"""

from __future__ import annotations

import collections
import errno
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from runhistory.core.errors import TensorboardError
from runhistory.core.paths import refuse_non_folder
from runhistory.core.processes import end_group, live_group_members, process_identity

__all__ = ["TensorboardServer"]

_OUTPUT_LINES = 200
# TensorBoard documents samples_per_plugin "scalars=0" as "keep all", but its plugins then
# downsample every answer to 0 points; a huge count keeps all and serves all.
_ALL_SAMPLES = 2**31 - 1
_URL_PATTERN = re.compile(r"TensorBoard \S+ at http://\S+?:(\d+)/")

# Runs in the child: a watchdog thread waits for the owner process to exit (a pidfd where
# there is one; polling its pid and start time otherwise), then removes the temporary log
# folder, if any, and ends the process group (SIGTERM lets TensorBoard tidy up its own
# temporary files; SIGKILL follows). Then TensorBoard's own entry point runs.
_BOOTSTRAP = """\
import os, runpy, select, shutil, signal, sys, threading, time
from runhistory.core.processes import process_alive
owner, started, copy = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]

def owner_alive():
    return process_alive(owner, started)

def end_with_owner():
    try:
        handle = os.pidfd_open(owner)
    except (AttributeError, OSError):
        handle = None
    if handle is not None and owner_alive():
        select.select([handle], [], [])
    while owner_alive():
        time.sleep(0.5)
    if copy:
        shutil.rmtree(copy, ignore_errors=True)
    os.killpg(0, signal.SIGTERM)
    time.sleep(5)
    os.killpg(0, signal.SIGKILL)

threading.Thread(target=end_with_owner, name="runhistory-owner-watchdog", daemon=True).start()
sys.argv = ["tensorboard"] + sys.argv[4:]
runpy.run_module("tensorboard.main", run_name="__main__", alter_sys=True)
"""

def _normal_prefix(path_prefix: str) -> str:
    """``path_prefix`` as TensorBoard takes it: empty, or ``/a/b`` (one leading slash, none trailing)."""
    prefix = (path_prefix or "").strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise TensorboardError(f"path_prefix {path_prefix!r} is not a plain URL path like /tensorboard/abc")
    return f"/{prefix}" if prefix else ""


def _check_port_free(host: str, port: int) -> None:
    """Raise TensorboardError when ``host:port`` cannot be bound (as TensorBoard binds it)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TensorboardError(f"cannot resolve TensorBoard host {host!r}: {exc}") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise TensorboardError(
                    f"port {port} on {host} is already in use; pick another port or port=0"
                ) from exc
            raise TensorboardError(f"cannot bind {host}:{port} for TensorBoard: {exc}") from exc


class _Child:
    """A running TensorBoard process group and the thread that drains its output.

    Kept apart from :class:`TensorboardServer` so that a ``weakref.finalize`` can stop it
    without keeping the server alive. TensorBoard is only reaped once its whole process group
    is gone, so that the group id cannot be reused by an unrelated process meanwhile.
    """

    def __init__(self, command: list[str], log_path: Path | None) -> None:
        """Spawn ``command`` in a new session with its output piped to a drain thread."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.lines: collections.deque[str] = collections.deque(maxlen=_OUTPUT_LINES)
        self.url_seen = threading.Event()
        self.served_port: int | None = None
        self._log: IO[str] | None = None
        if log_path is not None:
            self._log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115
        self.popen = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            text=True,
            encoding="utf-8",
            errors="replace",
            close_fds=True,
        )
        self.pgid = self.popen.pid
        self.thread = threading.Thread(
            target=self._drain, name=f"tensorboard-output-{self.popen.pid}", daemon=True
        )
        self.thread.start()

    def _drain(self) -> None:
        """Read output lines until every process of the group has closed the pipe."""
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))
            self._log_line(line)
            match = _URL_PATTERN.search(line)
            if match and not self.url_seen.is_set():
                self.served_port = int(match.group(1))
                self.url_seen.set()
        self.url_seen.set()

    def _log_line(self, line: str) -> None:
        """Copy a line to the log file, if there is one still open."""
        log = self._log
        if log is not None:
            try:
                log.write(line)
                log.flush()
            except (ValueError, OSError):
                self._log = None

    def output(self, count: int = 20) -> str:
        """The last ``count`` lines TensorBoard printed."""
        return "\n".join(list(self.lines)[-count:])

    def exit_status(self) -> int | None:
        """TensorBoard's exit code (minus the signal number if killed), None while it runs.

        Does not reap the process (``WNOWAIT``) where the platform allows it.
        """
        if self.popen.returncode is not None or not hasattr(os, "waitid"):
            return self.popen.poll()
        try:
            info = os.waitid(os.P_PID, self.popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return self.popen.poll()
        if info is None or info.si_pid == 0:
            return None
        return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status

    def terminate(self, grace: float = 5.0) -> None:
        """SIGTERM the group, SIGKILL it after ``grace`` seconds, reap, and join the thread."""
        if self.popen.returncode is None:
            end_group(self.pgid, grace, gone=self._group_gone)
            self.popen.wait()
        self.thread.join(timeout=grace)
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        log, self._log = self._log, None
        if log is not None:
            log.close()

    def _group_gone(self) -> bool:
        """Whether TensorBoard has exited (not reaped yet) and no other process of its group is alive."""
        return self.exit_status() is not None and not live_group_members(self.pgid)


def _terminate_if_owner(child: _Child, owner: int) -> None:
    """Stop the child, unless this is a forked copy of its owner (the child is not ours)."""
    if os.getpid() == owner:
        child.terminate()


def _http_ok(url: str, timeout: float) -> bool:
    """True when GET ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


class TensorboardServer:
    """The real TensorBoard serving ``logdir``, as a child process.

    ``load_fast``: True uses the Rust data server (``--load_fast=true``), False the Python
    loader, None lets TensorBoard choose (``auto``). The data server reloads every whole
    number of seconds, so with it an interval below 1 s becomes 1 s; 0 loads once.
    ``port=0`` picks a free port. All event files of a run folder are followed
    (``--reload_multifile=true``, never considered inactive). ``samples_per_plugin`` (e.g.
    ``{"scalars": 0, "images": 100}``; 0 means all) overrides TensorBoard's downsampling,
    which keeps 1000 scalar points and 10 images per tag. ``extra_args`` go to TensorBoard
    as they are; ``log_path`` receives TensorBoard's output. ``path_prefix`` (e.g.
    ``/tensorboard/abc``) serves everything under that path (``--path_prefix``), for a proxy
    that forwards its requests unchanged; :attr:`url` then ends with it.

    :meth:`start` returns once TensorBoard answers HTTP; its loader reads the log folder in
    the background, so runs can show up a moment later.
    """

    def __init__(
        self,
        logdir: str | os.PathLike[str],
        port: int = 6006,
        host: str = "127.0.0.1",
        reload_interval: float = 1.0,
        load_fast: bool | None = None,
        *,
        window_title: str | None = None,
        samples_per_plugin: Mapping[str, int] | None = None,
        extra_args: Sequence[str] = (),
        log_path: str | os.PathLike[str] | None = None,
        remove_logdir_if_orphaned: bool = False,
        path_prefix: str = "",
    ) -> None:
        """Describe the server; nothing runs until :meth:`start`.

        ``remove_logdir_if_orphaned``: the logdir is a temporary copy, which TensorBoard's
        watchdog removes should this process end without :meth:`stop`.
        """
        if not 0 <= int(port) <= 65535:
            raise TensorboardError(f"port {port} is not a TCP port number")
        if reload_interval < 0:
            raise TensorboardError(f"reload_interval must be >= 0, got {reload_interval}")
        self._logdir = Path(logdir).expanduser().absolute()
        self._requested_port = int(port)
        self._host = host
        self._reload_interval = float(reload_interval)
        self._load_fast = load_fast
        self._window_title = window_title
        self._samples_per_plugin = dict(samples_per_plugin or {})
        self._extra_args = list(extra_args)
        self._log_path = Path(log_path) if log_path is not None else None
        self._remove_logdir_if_orphaned = remove_logdir_if_orphaned
        self._path_prefix = _normal_prefix(path_prefix)
        self._child: _Child | None = None
        self._finalizer: weakref.finalize | None = None
        self._port: int | None = None
        self._lock = threading.RLock()

    @property
    def logdir(self) -> Path:
        """The folder TensorBoard serves."""
        return self._logdir

    @property
    def port(self) -> int | None:
        """The port served on (known once started when port=0 was asked)."""
        if self._port is not None:
            return self._port
        return self._requested_port or None

    @property
    def url(self) -> str | None:
        """``http://host:port/`` (then the path prefix and ``/``), or None while the port is unknown."""
        port = self.port
        if port is None:
            return None
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{port}{self._path_prefix}/"

    @property
    def pid(self) -> int | None:
        """Pid of the TensorBoard process (also its process group id), None when stopped."""
        return self._child.popen.pid if self._child is not None else None

    @property
    def running(self) -> bool:
        """True while the TensorBoard process is alive."""
        return self._child is not None and self._child.exit_status() is None

    def command(self) -> list[str]:
        """The TensorBoard command line (after the bootstrap that watches this process)."""
        load_fast = {None: "auto", True: "true", False: "false"}[self._load_fast]
        interval = self._reload_interval
        if self._load_fast is not False and 0 < interval < 1:
            interval = 1.0  # the data server gets int(interval): 0 would make it reload non-stop
        args = [
            "--logdir", str(self._logdir),
            "--host", self._host,
            "--port", str(self._requested_port),
            "--reload_interval", repr(interval),
            "--load_fast", load_fast,
            "--reload_multifile", "true",
            "--reload_multifile_inactive_secs", "-1",
        ]  # fmt: skip
        if self._window_title:
            args += ["--window_title", self._window_title]
        if self._path_prefix:
            args += ["--path_prefix", self._path_prefix]
        if self._samples_per_plugin:
            pairs = ",".join(
                f"{plugin}={count if count > 0 else _ALL_SAMPLES}"
                for plugin, count in self._samples_per_plugin.items()
            )
            args += ["--samples_per_plugin", pairs]
        return args + self._extra_args

    def start(self, timeout: float = 60.0) -> str:
        """Start TensorBoard and return its URL once it answers HTTP.

        Raises TensorboardError when the logdir is a file, the port is busy, TensorBoard exits
        early (with its last output lines), or it does not answer within ``timeout`` seconds.
        """
        with self._lock:
            if self.running:
                return self.url or ""
            self._stop_child()
            self._check_logdir()
            if self._requested_port:
                _check_port_free(self._host, self._requested_port)
            self._spawn()
            try:
                return self._wait_ready(timeout)
            except BaseException:
                self._stop_child()
                raise

    def _check_logdir(self) -> None:
        """Refuse a logdir that exists but is not a folder."""
        refuse_non_folder(self._logdir, "Cannot serve", TensorboardError)

    def _spawn(self) -> None:
        """Start the child process, watching this one, and register its cleanup."""
        owner, started = process_identity()
        copy = str(self._logdir) if self._remove_logdir_if_orphaned else ""
        command = [sys.executable, "-c", _BOOTSTRAP, str(owner), repr(started), copy, *self.command()]
        try:
            child = _Child(command, self._log_path)
        except OSError as exc:
            raise TensorboardError(f"could not start TensorBoard: {exc}") from exc
        self._child = child
        self._finalizer = weakref.finalize(self, _terminate_if_owner, child, owner)

    def _wait_ready(self, timeout: float) -> str:
        """Wait for the serving line, then for HTTP 200 on /data/environment."""
        child = self._child
        assert child is not None
        deadline = time.monotonic() + timeout
        while not child.url_seen.wait(0.05):
            self._raise_if_exited(child)
            if time.monotonic() > deadline:
                raise self._timeout_error(timeout, child)
        self._raise_if_exited(child)
        if child.served_port is None:
            raise self._exit_error(child)
        self._port = child.served_port
        probe = f"{self.url}data/environment"
        while not _http_ok(probe, timeout=2.0):
            self._raise_if_exited(child)
            if time.monotonic() > deadline:
                raise self._timeout_error(timeout, child)
            time.sleep(0.02)
        return self.url or ""

    def _raise_if_exited(self, child: _Child) -> None:
        """Raise with TensorBoard's output if it has exited."""
        if child.exit_status() is not None:
            child.thread.join(timeout=2.0)
            raise self._exit_error(child)

    def _exit_error(self, child: _Child) -> TensorboardError:
        """The error for a TensorBoard that stopped before serving."""
        output = child.output()
        if "could not bind to port" in output:
            return TensorboardError(
                f"port {self._requested_port} on {self._host} is already in use "
                f"(TensorBoard said: {output.splitlines()[-1]})"
            )
        return TensorboardError(
            f"TensorBoard for {self._logdir} exited with code {child.exit_status()} "
            f"before serving; its last output:\n{output}"
        )

    def _timeout_error(self, timeout: float, child: _Child) -> TensorboardError:
        """The error for a TensorBoard that did not answer in time."""
        return TensorboardError(
            f"TensorBoard for {self._logdir} did not answer within {timeout:g} s; "
            f"its last output:\n{child.output()}"
        )

    def output(self, count: int = 20) -> str:
        """The last ``count`` lines TensorBoard printed (empty before start)."""
        return self._child.output(count) if self._child is not None else ""

    def _stop_child(self, grace: float = 5.0) -> None:
        """Terminate the child, if any."""
        child, finalizer = self._child, self._finalizer
        self._child, self._finalizer = None, None
        if finalizer is not None:
            finalizer.detach()
        if child is not None:
            child.terminate(grace)

    def stop(self, grace: float = 5.0) -> None:
        """Stop TensorBoard and its data server: SIGTERM, then SIGKILL after ``grace`` s.

        Leaves no process behind and frees the port; stopping twice is harmless.
        """
        with self._lock:
            self._stop_child(grace)
            self._port = None

    def __enter__(self) -> TensorboardServer:
        """Start the server (if not running) and return it."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    def __repr__(self) -> str:
        """Show the logdir, URL and state."""
        state = "running" if self.running else "stopped"
        return f"TensorboardServer({str(self._logdir)!r}, url={self.url!r}, {state})"

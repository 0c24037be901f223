"""The server trusts no client: tokens stay required, bodies are counted as read, slow or
half-sent requests are closed, and what cannot be kept is a 4xx with nothing stored."""

from __future__ import annotations

import json
import socket
import struct
import time
import zlib
from pathlib import Path
from typing import Any, Iterator

import httpx
import psutil

from runhistory import Experiment, Workspace
from runhistory.protocol import wire
from runhistory.store import codec
from runhistory.store.base import MetricKind

from tests.server.support import ServerProcess, runhistory_cli

MiB = 1 << 20


def _create_token(server: ServerProcess, name: str) -> str:
    created = runhistory_cli("server", "token", "create", name, "--workspace", server.store_uri)
    assert created.returncode == 0, created.stderr
    return created.stdout.strip()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _assert_closed(server: ServerProcess, *header_sets: dict[str, str]) -> None:
    """Every request but health gets 401, whatever headers are given."""
    api = f"{server.url}/api/v1"
    assert httpx.get(f"{api}/health").status_code == 200
    for headers in header_sets:
        assert httpx.get(f"{api}/experiments", headers=headers).status_code == 401
        assert httpx.post(f"{api}/experiments", json={"name": "let-in"}, headers=headers).status_code == 401
        assert httpx.get(f"{api}/runs/x/files", headers=headers).status_code == 401


def test_revoking_the_last_token_keeps_the_server_closed_also_after_a_restart(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server")
    token = _create_token(server, "only")
    server.start()
    try:
        assert httpx.get(f"{server.url}/api/v1/experiments", headers=_bearer(token)).status_code == 200
        revoked = runhistory_cli("server", "token", "revoke", "only", "--workspace", server.store_uri)
        assert revoked.returncode == 0, revoked.stderr
        _assert_closed(server, {}, _bearer(token), _bearer("rh_nope_nope"))
        server.stop()
        server.start()
        _assert_closed(server, {}, _bearer(token))
        assert "none is active: every request but /api/v1/health gets 401" in server.log()
        fresh = _create_token(server, "second")  # a new token opens it to its holder only
        names = [one["name"] for one in httpx.get(f"{server.url}/api/v1/experiments", headers=_bearer(fresh)).json()]
        assert "let-in" not in names
        _assert_closed(server, {}, _bearer(token))
    finally:
        server.stop()


def test_require_tokens_closes_a_loopback_server_that_never_had_a_token(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server", args=("--require-tokens",)).start()
    try:
        _assert_closed(server, {}, _bearer("rh_nope_nope"))
        log = server.log()
        assert "Tokens: required (--require-tokens) but none is active" in log and "token create NAME" in log
        token = _create_token(server, "alice")
        assert httpx.get(f"{server.url}/api/v1/experiments", headers=_bearer(token)).status_code == 200
        _assert_closed(server, {})
    finally:
        server.stop()


def _json_name_chunks(size: int) -> Iterator[bytes]:
    """A JSON body ``{"name": "xxx..."}`` of about ``size`` bytes, sent chunked (no Content-Length)."""
    block = b"x" * MiB
    yield b'{"name": "'
    for _ in range(size // MiB):
        yield block
    yield b'"}'


def test_a_chunked_body_past_the_limit_gets_a_small_413_quickly_and_memory_stays_bounded(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server", RUNHISTORY_SERVER_MAX_REQUEST=str(MiB)).start()
    try:
        api = f"{server.url}/api/v1"
        run_id = httpx.post(f"{api}/runs", json={"experiment_id": httpx.post(f"{api}/experiments", json={"name": "e"}).json()["id"]}).json()["id"]
        process = psutil.Process(server.process.pid)
        before = process.memory_info().rss
        for method, route in [("POST", "/experiments"), ("POST", "/metrics"), ("PATCH", f"/runs/{run_id}/tags"),
                              ("POST", "/runs/search"), ("POST", f"/runs/{run_id}/files/log.txt")]:
            started = time.monotonic()
            answer = httpx.request(method, api + route, content=_json_name_chunks(128 * MiB),
                                   headers={"Content-Type": "application/json"}, timeout=60)
            assert answer.status_code == 413, (route, answer.status_code, answer.text[:300])
            assert time.monotonic() - started < 20, route
            assert len(answer.content) < 500 and "limit of 1048576 bytes" in answer.json()["detail"]
        grown = process.memory_info().rss - before
        assert grown < 48 * MiB, f"the server grew by {grown >> 20} MiB reading bodies past a 1 MiB limit"
        assert [one["name"] for one in httpx.get(f"{api}/experiments").json()] == ["e"]
        assert not httpx.get(f"{api}/runs/{run_id}/files").json()  # no file listed
    finally:
        server.stop()


def test_a_422_names_where_and_what_and_never_echoes_the_body(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server").start()
    try:
        api = f"{server.url}/api/v1"
        huge = "y" * (8 * MiB)
        for method, route, body in [
            ("POST", "/experiments", {"name": huge}),
            ("POST", "/experiments", {"name": [huge] * 2}),
            ("POST", "/runs", {"experiment_id": huge}),
            ("POST", "/runs/search", {"tags": {str(i): 5 for i in range(200_000)}}),
        ]:
            answer = httpx.request(method, api + route, json=body, timeout=60)
            assert answer.status_code == 422, answer.text[:300]
            assert len(answer.content) < 1200 and "yyyy" not in answer.text
            detail = answer.json()["detail"]
            assert detail.startswith("The request is not valid at body") and isinstance(detail, str)
    finally:
        server.stop()


def _half_sent_connections(port: int, count: int) -> list[socket.socket]:
    held = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(b"GET /api/v1/experiments HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ")
            held.append(sock)
    except BaseException:
        for sock in held:
            sock.close()
        raise
    return held


def test_2000_half_sent_connections_do_not_stop_a_client_with_a_token(tmp_path: Path) -> None:
    cap = 200
    server = ServerProcess(
        tmp_path / "server", RUNHISTORY_SERVER_MAX_CONNECTIONS=str(cap), RUNHISTORY_SERVER_HEADER_TIMEOUT="300"
    )
    token = _create_token(server, "trainer")
    server.start()
    held = _half_sent_connections(server.port, 2000)
    try:
        assert httpx.get(f"{server.url}/api/v1/health", timeout=10).json()["status"] == "ok"
        run = Experiment(Workspace(server.url, token=token), "under-load").start_logging()
        for step in range(500):
            run.log("loss", 1.0 / (step + 1), step=step)
            if step % 100 == 0:  # keep connections coming while the flood is held
                assert httpx.get(f"{server.url}/api/v1/health", timeout=10).status_code == 200
        run.complete()
        again = Workspace(server.url, token=token).get_run(run.id)
        assert again.get_metrics()["loss"] == [1.0 / (step + 1) for step in range(500)]
        assert again.get_status() == "Completed"
        open_files = psutil.Process(server.process.pid).num_fds()
        assert open_files < cap + 150, f"the server holds {open_files} files with a cap of {cap} connections"
    finally:
        for sock in held:
            sock.close()
        server.stop()


def _closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> float:
    """Seconds until the server closes ``sock`` (sending ``trickle`` a byte at a time meanwhile)."""
    started = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - started < seconds:
        try:
            data = sock.recv(4096)
            if not data or data.startswith(b"HTTP/1.1 408"):
                return time.monotonic() - started
        except socket.timeout:
            pass
        except ConnectionError:
            return time.monotonic() - started
        if trickle:
            try:
                sock.sendall(trickle[:1])
            except OSError:
                return time.monotonic() - started
            trickle = trickle[1:] or trickle
    raise AssertionError(f"the server kept the connection open for {seconds} s")


def test_headers_that_trickle_in_are_closed_after_the_header_timeout(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server", RUNHISTORY_SERVER_HEADER_TIMEOUT="1").start()
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(b"GET /api/v1/health HTTP/1.1\r\n")
            assert 0.8 < _closed_within(sock, 8, trickle=b"X-Slow: still-coming") < 5
        with httpx.Client(base_url=server.url) as client:  # a kept-alive connection is not cut by it
            for _ in range(3):
                assert client.get("/api/v1/health").status_code == 200
                time.sleep(1.2)
    finally:
        server.stop()


def test_a_stalled_body_is_closed_after_the_body_timeout_and_nothing_is_stored(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server", RUNHISTORY_SERVER_BODY_TIMEOUT="1").start()
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(
                b"POST /api/v1/experiments HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"name": "stalled'
            )
            assert 0.8 < _closed_within(sock, 8) < 5
        assert httpx.get(f"{server.url}/api/v1/experiments").json() == []
    finally:
        server.stop()


def test_files_of_a_run_that_does_not_exist_get_404_naming_it_and_nothing_is_stored(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server").start()
    try:
        api = f"{server.url}/api/v1/runs/ghost-run"
        for answer in [
            httpx.put(f"{api}/files/a.txt", content=b"written"),
            httpx.post(f"{api}/files/log.txt", content=b"appended"),
            httpx.post(f"{api}/files/log.txt", content=iter([b"chunked"])),
            httpx.get(f"{api}/files"),
            httpx.get(f"{api}/files/a.txt"),
            httpx.get(f"{api}/file-size/a.txt"),
        ]:
            assert answer.status_code == 404, answer.text
            assert "No run with id 'ghost-run'" in answer.json()["detail"]
        stored = [path for path in Path(server.artifacts).rglob("*") if "ghost-run" in str(path)]
        assert stored == []
        run = Experiment(Workspace(server.url), "files").start_logging()
        assert httpx.put(f"{server.url}/api/v1/runs/{run.id}/files/a.txt", content=b"kept").status_code == 200
        assert run.get_file_names() == ["a.txt"]
        run.complete()
    finally:
        server.stop()


def _batch(for_run: str, **edit: Any) -> bytes:
    """A compressed metric batch of two points whose header entry (and JSON steps) ``edit`` changes."""
    steps = edit.pop("step_list", [None, 5])
    steps_blob = json.dumps(steps).encode()
    values, times = codec.encode_values([1.0, 2.0])[1], codec.encode_times([1e9, 1e9 + 1])
    entry = {"run_id": for_run, "name": "m", "kind": MetricKind.SCALAR, "description": "", "n": 2, "enc": codec.FLOAT64,
             "values": len(values), "step_mode": "json", "steps": len(steps_blob), "times": len(times), **edit}
    head = json.dumps([entry]).encode()
    return zlib.compress(wire.MAGIC + struct.pack("<I", len(head)) + head + values + steps_blob + times)


def test_a_step_of_1e23_or_a_malformed_batch_is_a_4xx_and_nothing_is_stored(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server").start()
    try:
        run = Experiment(Workspace(server.url), "batches").start_logging()
        api = f"{server.url}/api/v1"
        assert httpx.post(f"{api}/metrics", content=_batch(run.id)).status_code == 200  # the batch itself is fine
        other = Experiment(Workspace(server.url), "batches").start_logging()
        for body in [
            _batch(other.id, step_list=[None, 10**23]),
            _batch(other.id, step_list=[None, -(10**23)]),
            _batch(other.id, step_list=[None, True]),
            _batch(other.id, name=5),
            _batch(other.id, run_id=None),
            _batch(other.id, n=-2),
            _batch(other.id, times=10**9),
            _batch(other.id, values=-8),
        ]:
            answer = httpx.post(f"{api}/metrics", content=body)
            assert 400 <= answer.status_code < 500, answer.text
            assert "Bad metric batch" in answer.json()["detail"] and len(answer.content) < 500
        read = httpx.get(f"{api}/runs/{other.id}/metrics")
        assert read.status_code == 200 and wire.decode_series(read.content) == {}
        run.complete()
        other.complete()
    finally:
        server.stop()


def test_statuses_and_times_the_run_history_cannot_show_are_refused(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server").start()
    try:
        run = Experiment(Workspace(server.url), "statuses").start_logging()
        api = f"{server.url}/api/v1/runs/{run.id}/status"
        for body in [{"status": "Bogus"}, {"status": "Failed", "at": -1e300}, {"status": "Failed", "at": 1e300},
                     {"status": "Failed", "error": {"x" * 300: "y"}}, {"status": "x" * 10_000}]:
            answer = httpx.post(api, json=body)
            assert 400 <= answer.status_code < 500 and len(answer.content) < 500, answer.text
        nan = httpx.post(api, content=b'{"status": "Failed", "at": NaN}', headers={"Content-Type": "application/json"})
        assert nan.status_code == 422
        assert Workspace(server.url).get_run(run.id).get_status() == "Running"
        listed = runhistory_cli("runs", "list", "-w", server.url, env=server.client_env())
        assert listed.returncode == 0 and "statuses" in listed.stdout and "Running" in listed.stdout, listed.stderr
        run.complete()
    finally:
        server.stop()

"""A REST client gets the store's validation too: what the SDK would refuse is refused over HTTP
(4xx, one sentence) and nothing of it is stored; the SDK's client treats a refusal as final."""

from __future__ import annotations

import json
import time
import zlib

import httpx
import numpy as np
import pytest

from runhistory import Experiment, Workspace
from runhistory.core.errors import StoreUnavailableError
from runhistory.protocol import wire
from runhistory.store.base import MetricBatch, RunStatus
from runhistory.client.http import HttpClient

from tests.server.support import ServerProcess, free_port


@pytest.fixture
def api(shared_server: ServerProcess) -> str:
    return f"{shared_server.url}/api/v1"


@pytest.fixture
def run_id(api: str, request: pytest.FixtureRequest) -> str:
    experiment = httpx.post(f"{api}/experiments", json={"name": f"rest-{request.node.name[:40]}".replace("[", "-").replace("]", "")})
    assert experiment.status_code == 200, experiment.text
    created = httpx.post(f"{api}/runs", json={"experiment_id": experiment.json()["id"]})
    assert created.status_code == 200, created.text
    return created.json()["id"]


def message(entries: list[dict], parts: list[bytes]) -> bytes:
    """A points message as ``wire`` frames it, with whatever a client puts in it."""
    return zlib.compress(wire._pack(entries, parts))


def entry(run_id: str, name: str = "m", kind: str = "scalar", values: list | None = None, steps: list | None = None,
          times: list | None = None) -> tuple[dict, list[bytes]]:
    values = [1.0] if values is None else values
    encoded = json.dumps(values).encode()
    step_blob = b"" if steps is None else json.dumps(steps).encode()
    time_blob = np.asarray([time.time()] * len(values) if times is None else times, dtype="<f8").tobytes()
    head = {
        "run_id": run_id, "name": name, "kind": kind, "description": "", "n": len(values), "enc": "json",
        "values": len(encoded), "step_mode": "none" if steps is None else "json", "steps": len(step_blob),
        "times": len(time_blob),
    }
    return head, [encoded, step_blob, time_blob]


def post_points(api: str, *entries: tuple[dict, list[bytes]]) -> httpx.Response:
    heads = [head for head, _ in entries]
    parts = [part for _, three in entries for part in three]
    return httpx.post(f"{api}/metrics", content=message(heads, parts), headers={"Content-Type": wire.MEDIA_TYPE})


def assert_refused(response: httpx.Response, *words: str) -> str:
    """4xx with one sentence (the server's request models or the store's checks: whichever comes first)."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and len(detail) < 500, detail
    for word in words:
        assert word in detail, detail
    return detail


def stored_metrics(api: str, run_id: str) -> dict:
    answer = httpx.get(f"{api}/runs/{run_id}/metrics")
    assert answer.status_code == 200
    return wire.decode_series(answer.content)


BAD_POINTS = {
    "empty name": ({"name": ""}, "is empty"),
    "control characters": ({"name": "a\x01b"}, "control characters"),
    "10,000-character name": ({"name": "n" * 10_000}, "10000 characters"),
    "kind bogus": ({"kind": "bogus"}, "unknown kind 'bogus'"),
    "step 1e23": ({"steps": [10**23]}, "64-bit"),
    "float step": ({"steps": [1e23]}, "step"),
    "int past int64": ({"values": [2**70]}, "64-bit range"),
    "NaN wall time": ({"times": [float("nan")]}, "wall time"),
    "wall time -1e300": ({"times": [-1e300]}, "wall time"),
    "null value": ({"values": [None]}, "must be a number or a string"),
}


@pytest.mark.parametrize("case", list(BAD_POINTS))
def test_bad_points_get_4xx_with_one_sentence_and_nothing_is_stored(api: str, run_id: str, case: str) -> None:
    fields, reason = BAD_POINTS[case]
    good = entry(run_id, "good")
    response = post_points(api, good, entry(run_id, **fields))
    assert_refused(response, reason)
    assert stored_metrics(api, run_id) == {}  # not even the good series of the same request
    assert post_points(api, good).status_code == 200


def test_bad_statuses_and_times_get_4xx_and_change_nothing(api: str, run_id: str) -> None:
    assert_refused(httpx.post(f"{api}/runs/{run_id}/status", json={"status": "Bogus"}), "Unknown", "'Bogus'")
    assert_refused(httpx.post(f"{api}/runs/{run_id}/status", json={"status": "Completed", "at": -1e300}), "at")
    assert_refused(httpx.post(f"{api}/runs/{run_id}/status", json={"status": "Failed", "error": {"no": "message"}}))
    run = httpx.get(f"{api}/runs/{run_id}").json()
    assert run["status"] == RunStatus.RUNNING and run["end_time"] is None and run["error"] is None
    listed = httpx.post(f"{api}/runs/search", json={})
    assert listed.status_code == 200  # `runhistory runs list` has nothing to choke on


def test_bad_runs_tags_and_properties_get_4xx(api: str, run_id: str) -> None:
    experiment_id = httpx.get(f"{api}/runs/{run_id}").json()["experiment_id"]
    assert_refused(httpx.post(f"{api}/runs", json={"experiment_id": experiment_id, "status": "Bogus"}))
    assert_refused(httpx.post(f"{api}/runs", json={"experiment_id": experiment_id, "display_name": "a\x07"}))
    assert_refused(httpx.post(f"{api}/runs", json={"experiment_id": experiment_id, "parent_id": "nope"}))
    assert_refused(httpx.patch(f"{api}/runs/{run_id}/tags", json={"": "v"}))
    assert_refused(httpx.patch(f"{api}/runs/{run_id}/tags", json={"k": "a\x00b"}))
    assert_refused(httpx.patch(f"{api}/runs/{run_id}/properties", json={"k" * 300: "v"}))
    assert_refused(httpx.put(f"{api}/compute-targets/bad%20name", json={"kind": "local", "config": {}}))
    assert httpx.get(f"{api}/runs/{run_id}/tags").json() == {}
    assert httpx.get(f"{api}/runs/{run_id}/properties").json() == {}
    children = httpx.post(f"{api}/runs/search", json={"experiment_id": experiment_id}).json()
    assert [one["id"] for one in children] == [run_id]


def test_points_for_a_finished_or_missing_run_are_refused(api: str, run_id: str) -> None:
    assert httpx.post(f"{api}/runs/{run_id}/status", json={"status": "Completed"}).status_code == 200
    assert_refused(post_points(api, entry(run_id)), "has ended (Completed)")
    assert_refused(post_points(api, entry("no-such-run")), "No run with id 'no-such-run'")
    assert stored_metrics(api, run_id) == {}


def test_a_refusal_is_final_for_the_sdk_and_other_runs_are_written(
    shared_server: ServerProcess, capsys: pytest.CaptureFixture
) -> None:
    ws = Workspace(shared_server.url)
    exp = Experiment(ws, "rest-sdk-refusal")
    run, other = exp.start_logging(), exp.start_logging()
    stale = ws.get_run(run.id)
    run.complete()
    stale.log("late", 1.0)  # refused by the server (409): dropped, never spooled
    ws.backends.buffer.series(other.id, "bad", "bogus").add(1.0, None, time.time())  # refused (400)
    other.log("x", 2.0)
    other.complete()
    assert other.get_metrics() == {"x": 2.0} and run.get_metrics() == {}
    assert ws.store.spool.pending == 0
    dropped = [line for line in capsys.readouterr().err.splitlines() if line.startswith("runhistory: dropped")]
    assert len(dropped) == 2 and any("'late'" in line and "has ended" in line for line in dropped)


def test_an_unreachable_server_is_unavailable_not_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNHISTORY_HTTP_RETRY_TIMEOUT", "0.3")
    client = HttpClient(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StoreUnavailableError, match="cannot be reached"):
        client.request("GET", "/experiments")
    client.close()


def test_long_strings_are_sent_in_requests_under_the_servers_limit() -> None:
    from runhistory.client.batches import MAX_BYTES_PER_REQUEST, split_batches

    text = "\u00e9" * (1 << 19)  # 1 MiB in UTF-8, 6 bytes a character as JSON
    strings = MetricBatch("r", "notes", "scalar", [text] * 60, [None] * 60, [1.0] * 60)
    numbers = MetricBatch("r", "loss", "scalar", [0.5] * 10, [None] * 10, [1.0] * 10)
    groups = list(split_batches([strings, numbers]))
    assert sum(len(batch.values) for group in groups for batch in group) == 70
    for group in groups:  # each request decodes to less than the server's limits
        assert len(zlib.decompress(wire.encode_batches(group))) < MAX_BYTES_PER_REQUEST + (1 << 20) < 64 << 20


def test_a_spooled_batch_the_server_refuses_is_split_so_only_the_refused_series_is_dropped(
    shared_server: ServerProcess, capsys: pytest.CaptureFixture
) -> None:
    from runhistory.client.spool import METRICS, SpoolRecord

    ws = Workspace(shared_server.url)
    exp = Experiment(ws, "rest-spool-split")
    ended, alive = exp.start_logging(), exp.start_logging()
    ended.complete()
    now = time.time()
    batches = [
        MetricBatch(alive.id, "kept", "scalar", [1.0, 2.0], [None, None], [now, now]),
        MetricBatch(ended.id, "refused", "scalar", [3.0], [None], [now]),
        MetricBatch(alive.id, "also-kept", "scalar", [4.0], [None], [now]),
    ]
    ws.store.spool.add(SpoolRecord(METRICS, "spooled-while-away", wire.encode_batches(batches)))
    assert ws.store.spool.wait(30)
    assert alive.get_metrics() == {"kept": [1.0, 2.0], "also-kept": 4.0} and ended.get_metrics() == {}
    refused = [line for line in capsys.readouterr().err.splitlines() if "refused a spooled record" in line]
    assert len(refused) == 1 and "has ended" in refused[0]
    alive.complete()

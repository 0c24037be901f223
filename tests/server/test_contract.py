"""The SDK against a real runhistory server: what works embedded works the same over HTTP."""

from __future__ import annotations

import io
import math
from pathlib import Path

import httpx
import numpy as np
import pytest

from runhistory import Experiment, Workspace
from runhistory.core.errors import ArtifactNotFoundError, ArtifactPathError, NotFoundError, RunHistoryError
from runhistory.store.base import RunFilter
from runhistory.tensorboard.export import export_to_tensorboard

from tests.server.support import ServerProcess


@pytest.fixture
def server(shared_server: ServerProcess) -> ServerProcess:
    """The tests of this module share one server; each logs into an experiment of its own."""
    return shared_server


@pytest.fixture
def remote_exp(remote_ws: Workspace, request: pytest.FixtureRequest) -> Experiment:
    return Experiment(remote_ws, request.node.name[5:60])


def test_runs_metrics_tags_properties_and_children_over_http(remote_ws: Workspace, remote_exp: Experiment) -> None:
    assert remote_ws.tracking_uri == remote_ws.artifact_uri and remote_ws.tracking_uri.startswith("http://")
    run = remote_exp.start_logging(display_name="first")
    assert run.number == 1 and run.get_status() == "Running"
    for i in range(1000):
        run.log("loss", 1.0 / (i + 1))
    run.log("count", 3)
    run.log("steps", 0.5, step=10)
    run.log("steps", 0.25, step=20)
    run.log("special", math.nan)
    run.log("special", math.inf)
    run.log("word", "hello")
    run.log_list("list", [1, 2, 3])
    run.log_row("row", a=1, b=2.5)
    run.log_row("row", a=2, b=3.5)
    run.log_table("table", {"x": [1, 2], "y": ["a", "b"]})
    run.tag("kind", "smoke")
    run.set_tags({"lr": "0.1", "flag": ""})
    run.add_properties({"owner": "me"})
    with pytest.raises(RunHistoryError, match="cannot change"):
        run.add_properties({"owner": "you"})
    with run.child_run("child") as child:
        child.log("acc", 0.9)
    metrics = run.get_metrics()
    assert metrics["loss"] == [1.0 / (i + 1) for i in range(1000)]
    assert metrics["count"] == 3 and metrics["word"] == "hello" and metrics["list"] == [1, 2, 3]
    assert math.isnan(metrics["special"][0]) and metrics["special"][1] == math.inf
    assert metrics["row"] == {"a": [1, 2], "b": [2.5, 3.5]} and metrics["table"] == {"x": [1, 2], "y": ["a", "b"]}
    series = run.get_metric_series(["steps"])["steps"]
    assert series.steps.tolist() == [10, 20] and series.values == [0.5, 0.25]
    assert run.get_metric_series(["loss"], start=990)["loss"].steps.tolist() == list(range(990, 1000))
    everything = run.get_metrics(recursive=True)
    assert set(everything) == {run.id, child.id} and everything[child.id] == {"acc": 0.9}
    assert run.get_tags() == {"kind": "smoke", "lr": "0.1", "flag": ""}
    assert run.get_properties() == {"owner": "me"}
    assert [c.id for c in run.get_children()] == [child.id] and child.get_status() == "Completed"
    summaries = {s.name: s for s in remote_ws.store.get_metric_summaries(run.id)}
    assert summaries["loss"].count == 1000 and math.isinf(summaries["special"].last_value)
    run.complete()
    assert run.get_status() == "Completed" and run.get_details()["status"] == "Completed"
    assert next(iter(remote_exp.get_runs())).id == run.id
    assert [r.id for r in remote_exp.get_runs(tags={"kind": "smoke"})] == [run.id]
    assert remote_ws.get_run(f"{remote_exp.name}:{run.number}").id == run.id
    assert remote_exp.name in remote_ws.experiments
    with pytest.raises(NotFoundError):
        remote_ws.get_run("no-such-run")
    assert remote_ws.store.list_runs(RunFilter(parent_id=run.id))[0].id == child.id


def test_files_with_ranged_reads_appends_and_confinement(remote_ws: Workspace, remote_exp: Experiment, tmp_path: Path) -> None:
    run = remote_exp.start_logging()
    big = np.random.default_rng(0).bytes(3 << 20)  # several upload and read chunks
    (tmp_path / "big.bin").write_bytes(big)
    run.upload_file("outputs/big.bin", str(tmp_path / "big.bin"))
    run.upload_file("logs/a.txt", io.BytesIO(b"hello world"))
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "x.txt").write_text("x")
    run.upload_folder("up", str(folder))
    assert run.get_file_names() == ["logs/a.txt", "outputs/big.bin", "up/sub/x.txt"]
    artifacts = remote_ws.artifacts
    assert artifacts.read(run.id, "logs/a.txt", 6, 3) == b"wor"
    assert artifacts.read(run.id, "logs/a.txt", 6) == b"world"
    assert artifacts.read(run.id, "logs/a.txt", 100) == b""
    assert artifacts.append(run.id, "logs/a.txt", b"!!") == 13
    assert artifacts.append(run.id, "logs/a.txt", b"?", offset=11) == 12  # a retried append at its offset
    assert artifacts.read(run.id, "logs/a.txt") == b"hello world?"
    assert artifacts.size(run.id, "outputs/big.bin") == len(big) and artifacts.size(run.id, "nope") is None
    assert artifacts.list(run.id, "logs/") == {"logs/a.txt": 12}
    out = run.download_file("outputs/big.bin", tmp_path / "down.bin")
    assert out.read_bytes() == big
    run.download_files("up", tmp_path / "downloads")
    assert (tmp_path / "downloads" / "up" / "sub" / "x.txt").read_text() == "x"
    with pytest.raises(ArtifactNotFoundError):
        artifacts.read(run.id, "missing.txt")
    with pytest.raises(ArtifactPathError):
        artifacts.read(run.id, "../other/file")
    # the server itself confines paths, whatever a client sends
    for name in ("..%2F..%2Fetc%2Fpasswd", "a/..%2F..%2Fx", "%2Fetc%2Fpasswd"):
        response = httpx.get(f"{remote_ws.tracking_uri}/api/v1/runs/{run.id}/files/{name}")
        assert response.status_code in (400, 404), (name, response.status_code)
    for run_part in ("..%2Fescape", "..", "a%2F..%2F..%2Fescape"):
        response = httpx.put(f"{remote_ws.tracking_uri}/api/v1/runs/{run_part}/files/x.txt", content=b"x")
        assert response.status_code in (400, 404), (run_part, response.status_code)
    assert not list(tmp_path.rglob("escape")) and not (tmp_path / "server" / "x.txt").exists()
    run.complete()


def test_export_to_tensorboard_over_the_server(remote_exp: Experiment, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    parent = remote_exp.start_logging(display_name="sweep")
    for lr in (0.1, 0.01):
        with parent.child_run(f"lr={lr}") as child:
            child.tag("lr", str(lr))
            for step in range(5):
                child.log("loss", lr * step)
    parent.complete()
    export_to_tensorboard(parent, tmp_path / "tb")
    scalars = {}
    for event_file in (tmp_path / "tb").rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(event_file.parent))
        accumulator.Reload()
        tags = accumulator.Tags()
        if "loss" in tags["scalars"]:
            scalars[event_file.parent.name] = [e.value for e in accumulator.Scalars("loss")]
        elif "loss" in tags["tensors"]:
            tensors = accumulator.Tensors("loss")
            scalars[event_file.parent.name] = [float(tensor_util.make_ndarray(e.tensor_proto)) for e in tensors]
    assert len(list((tmp_path / "tb").rglob("events.out.tfevents.*"))) >= 2, list((tmp_path / "tb").rglob("*"))
    found = sorted([round(v, 6) for v in values] for values in scalars.values())
    assert found == sorted([round(lr * s, 6) for s in range(5)] for lr in (0.1, 0.01))


def test_a_million_point_series_reads_back_as_packed_binary(remote_exp: Experiment) -> None:
    run = remote_exp.start_logging()
    run.log_list("big", list(np.arange(1_000_000, dtype=np.float64)))
    run.flush()
    series = run.get_metric_series(["big"])["big"]
    assert len(series.values) == 1_000_000 and series.values[-1] == 999_999.0
    assert series.steps[-1] == 999_999
    run.complete()


def test_openapi_schema_lists_every_route(server: ServerProcess) -> None:
    schema = httpx.get(f"{server.url}/openapi.json").json()
    paths = set(schema["paths"])
    for path in ("/api/v1/runs", "/api/v1/metrics", "/api/v1/runs/{run_id}/files/{name}", "/api/v1/runs/{run_id}/claim",
                 "/api/v1/compute-targets/{name}", "/api/v1/runs/{run_id}/heartbeat"):
        assert path in paths

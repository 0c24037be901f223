"""The shape of the server's API in process: every error as ``{"error": code, "detail": sentence}``
with its class's status, the runs listing's page, the schema's records, and the server's CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from runhistory.artifacts import open_artifact_store
from runhistory.backends import open_run_store
from runhistory.cli.main import cli
from runhistory.core import errors
from runhistory.server.app import create_app
from runhistory.server.limits import RequestLimits
from runhistory.store.base import RunFilter, RunStore

SMALL = RequestLimits(max_request=1000, max_batch=4000, max_file=2000)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    opened = open_run_store(f"sqlite:///{tmp_path / 'server.db'}")
    yield opened
    opened.close()


@pytest.fixture
def api(store: RunStore, tmp_path: Path) -> TestClient:
    return TestClient(create_app(store, open_artifact_store(str(tmp_path / "artifacts")), limits=SMALL))


def assert_error(answer, cls: type[errors.RunHistoryError], status: int | None = None) -> str:
    assert answer.status_code == (status or cls.http_status), answer.text
    body = answer.json()
    assert set(body) == {"error", "detail"} and body["error"] == cls.code, body
    assert errors.error_for_code(body["error"], answer.status_code) is cls
    return body["detail"]


def test_every_error_answers_the_code_and_status_of_its_class(api: TestClient) -> None:
    assert "No experiment 'ghost'" in assert_error(api.get("/api/v1/experiments/ghost"), errors.NotFoundError)
    assert_error(api.get("/api/v1/no-such-route"), errors.NotFoundError)
    assert "body.name" in assert_error(api.post("/api/v1/experiments", json={}), errors.InvalidRequestError)
    assert "Bad metric batch" in assert_error(api.post("/api/v1/metrics", content=b"not zlib"), errors.InvalidBatchError)
    assert_error(api.delete("/api/v1/experiments"), errors.RunHistoryError, status=405)
    too_large = api.post("/api/v1/experiments", content=b"x" * 1001)
    assert "limit of 1000 bytes" in assert_error(too_large, errors.RequestTooLargeError)
    assert too_large.headers["connection"] == "close"


def test_a_request_without_a_token_is_unauthorized(store: RunStore, tmp_path: Path) -> None:
    api = TestClient(create_app(store, open_artifact_store(str(tmp_path / "files")), require_tokens=True, limits=SMALL))
    answer = api.get("/api/v1/experiments")
    assert "needs an API token" in assert_error(answer, errors.UnauthorizedError)
    assert answer.headers["www-authenticate"] == "Bearer"
    assert api.get("/api/v1/health").status_code == 200


def test_the_runs_listing_answers_one_page_and_the_count(api: TestClient, store: RunStore) -> None:
    experiment = store.get_or_create_experiment("paged")
    made = [store.create_run(experiment.id).id for _ in range(5)]
    newest_first = made[::-1]
    page = api.post("/api/v1/runs/search?limit=2&offset=1", json={"experiment_id": experiment.id}).json()
    assert [run["id"] for run in page] == newest_first[1:3]
    everything = api.post("/api/v1/runs/search", json={"experiment_id": experiment.id}).json()
    assert [run["id"] for run in everything] == newest_first
    assert api.post("/api/v1/runs/count", json={"experiment_id": experiment.id}).json() == {"count": 5}
    for bad in ("limit=0", "limit=10001", "offset=-1"):
        assert_error(api.post(f"/api/v1/runs/search?{bad}", json={}), errors.InvalidRequestError)


def test_the_schema_documents_the_records_and_the_error_body(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()
    models = schema["components"]["schemas"]
    assert {"RunRecord", "ExperimentRecord", "ComputeTargetRecord", "MetricSummary", "ErrorOut"} <= set(models)
    assert "HTTPValidationError" not in models
    run_answer = schema["paths"]["/api/v1/runs/{run_id}"]["get"]["responses"]["200"]
    assert run_answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/RunRecord"}


def test_server_commands_take_workspace_and_the_old_store_alias(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'team.db'}"
    runner = CliRunner()
    created = runner.invoke(cli, ["server", "token", "create", "alice", "--store", database])
    assert created.exit_code == 0, created.output
    listed = runner.invoke(cli, ["server", "token", "list", "--workspace", database, "--output", "json"])
    assert listed.exit_code == 0, listed.output
    assert [(token["name"], token["revoked_time"]) for token in json.loads(listed.output)] == [("alice", None)]
    refused = runner.invoke(cli, ["server", "token", "list", "--workspace", "http://127.0.0.1:1"])
    assert refused.exit_code == 1 and "must be a database" in refused.output
    assert "Missing option '--workspace'" in runner.invoke(cli, ["server", "token", "list"]).output
    for command in (["server"], ["server", "token"], ["server", "token", "list"], ["login"], ["sync"]):
        assert "Example:" in runner.invoke(cli, [*command, "--help"]).output, command


def test_a_bad_server_setting_is_one_sentence_at_start_up(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["server", "--workspace", str(tmp_path)], env={"RUNHISTORY_SERVER_MAX_FILE": "lots"})
    assert result.exit_code == 1 and "$RUNHISTORY_SERVER_MAX_FILE must be a positive number, not 'lots'." in result.output


def test_a_missing_server_extra_names_the_pip_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if not installed
    result = CliRunner().invoke(cli, ["server", "--workspace", str(tmp_path)])
    assert result.exit_code == 1 and "pip install 'runhistory[server]'" in result.output, result.output


def test_a_workspace_on_a_server_reads_one_page_of_runs_and_their_count(remote_ws) -> None:
    from runhistory import Experiment

    experiment = Experiment(remote_ws, "paged")
    made = [experiment.start_logging() for _ in range(4)]
    for run in made:
        run.complete()
    store = remote_ws.store
    page = store.list_runs(RunFilter(experiment_id=experiment.id, limit=2, offset=1))
    assert [record.id for record in page] == [run.id for run in made[::-1][1:3]]
    assert store.count_runs(RunFilter(experiment_id=experiment.id, limit=1)) == 4
    result = CliRunner().invoke(cli, ["runs", "list", "-w", remote_ws.tracking_uri, "-e", "paged", "-n", "2", "-o", "json"])
    assert result.exit_code == 0, result.output
    assert [row["id"] for row in json.loads(result.output)] == [run.id for run in made[::-1][:2]]

"""Scenarios 1 and 2 of scenarios.md, unchanged, against a team set-up: ``runhistory server``
backed by a real PostgreSQL and a real S3 server (SeaweedFS).

The scripts in examples/ run as they are, in child processes that only know the server's URL
(``RUNHISTORY_TRACKING_URI``): no database driver settings and no S3 credentials, as on a
laptop or a compute node of the team. Afterwards the test opens the PostgreSQL store and the
S3 bucket directly and finds everything there.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from runhistory import Experiment, Workspace
from runhistory.artifacts.s3 import S3ArtifactStore

from tests.helpers import python_env
from tests.jobs.support import wait_until
from tests.postgres import PostgresServer
from tests.s3 import S3Server
from tests.server.support import ServerProcess

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCALAR_TAGS = ("accuracy/test", "accuracy/train", "loss/test", "loss/train")


@pytest.fixture
def team_server(tmp_path: Path, postgres_server: PostgresServer, s3_uri: str, s3_env: S3Server) -> Iterator[ServerProcess]:
    """``runhistory server --workspace postgresql://... --artifacts s3://...`` on a database it migrates itself."""
    server = ServerProcess(
        tmp_path / "team-server", store_uri=postgres_server.create_database(migrated=False), artifacts=s3_uri, **s3_env.env()
    )
    server.start(timeout=60)
    yield server
    server.stop()


def run_example(script: str, server: ServerProcess) -> subprocess.CompletedProcess:
    """``python examples/SCRIPT`` in the working folder, knowing nothing but the server's URL."""
    env = {
        name: value
        for name, value in python_env(RUNHISTORY_TRACKING_URI=server.url, **server.client_env()).items()
        if not name.startswith("AWS_") and name != "RUNHISTORY_S3_ENDPOINT_URL"
    }
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script)], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_scenarios_1_and_2_unchanged_against_a_server_on_postgresql_and_s3(
    isolated: Path, team_server: ServerProcess
) -> None:
    first = run_example("scenario1_job.py", team_server)
    shown = dict(re.findall(r"TensorBoard at \S+ shows run (\S+): (.*)", first.stdout))
    assert shown == {"tensorboard-demo-1": ", ".join(f"{tag} (20 points)" for tag in SCALAR_TAGS)}, first.stdout
    assert "epoch 20/20" in first.stdout and "Status: Completed" in first.stdout
    run_example("scenario2_export.py", team_server)
    assert len(list((isolated / "exportedTBlogs").rglob("events.out.tfevents.*"))) == 8

    # What the server recorded is in PostgreSQL and in the bucket, read here without the server.
    direct = Workspace(team_server.store_uri, str(team_server.artifacts))
    assert isinstance(direct.artifacts, S3ArtifactStore)
    (job,) = Experiment(direct, "tensorboard-demo").get_runs()
    assert job.status == "Completed"
    curves = job.get_metrics()  # its supervisor stored its event files' scalars through the server
    assert {tag: len(curves[tag]) for tag in SCALAR_TAGS} == dict.fromkeys(SCALAR_TAGS, 20)
    assert f"Run history of {job.id}: " in first.stdout
    names = set(job.get_file_names())
    assert {"outputs/model.npz", "snapshot/train.py", "system_logs/driver.log"} <= names
    events = [name for name in names if name.startswith("logs/events.out.tfevents.")]
    assert events and direct.artifacts.size(job.id, events[0]) > 0
    assert "epoch 20/20" in direct.artifacts.read(job.id, "system_logs/driver.log").decode()
    # Once the job ended, the server sealed its files: each appended file is one object again.
    pieces = f"{direct.artifacts.prefix}/parts/{job.id}/"
    wait_until(lambda: not list(direct.artifacts._list_objects(pieces)), timeout=30, what="the job's files to be compacted")
    assert "epoch 20/20" in direct.artifacts.read(job.id, "system_logs/driver.log").decode()

    (root,) = Experiment(direct, "export-to-tensorboard").get_runs()
    assert root.status == "Completed"
    metrics = root.get_metrics()
    assert metrics["alpha"] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    assert len(metrics["mse"]) == 7 and all(3000 < mse < 4000 for mse in metrics["mse"])
    children = root.get_children()
    assert [child.get_metrics() for child in children] == [
        {"alpha": alpha, "mse": mse} for alpha, mse in zip(metrics["alpha"], metrics["mse"])
    ]

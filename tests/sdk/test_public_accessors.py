"""The SDK objects' public accessors, which the layers above use instead of private state."""

from __future__ import annotations

import sys

import pytest

from runhistory import Experiment, Workspace
from runhistory.backends import open_run_store
from runhistory.core.errors import JobConfigError, RunHistoryError
from runhistory.run import Run
from runhistory.watch import follow_log


def test_a_run_tells_its_workspace_and_record(exp: Experiment) -> None:
    run = exp.start_logging()
    assert run.workspace is exp.workspace
    assert run.record.id == run.id and run.record.status == "Running"
    run.complete()
    assert run.record.status == "Completed"
    again = Run.from_record(exp.workspace, exp.workspace.store.get_run(run.id))
    assert again == run and again.record.status == "Completed"


def test_an_experiment_comes_back_from_its_record(ws: Workspace, exp: Experiment) -> None:
    assert Experiment.from_record(ws, exp.record) == exp
    assert ws.experiments == {"unit": exp}


def test_the_workspace_shows_what_it_talks_to(ws: Workspace) -> None:
    assert ws.backends.store is ws.store and ws.backends.artifacts is ws.artifacts


def test_open_run_store_opens_a_store_of_its_own(ws: Workspace) -> None:
    store = open_run_store(ws.tracking_uri)
    try:
        assert store is not ws.store and store.uri == ws.tracking_uri
        assert store.list_experiments() == ws.store.list_experiments()
    finally:
        store.close()
    with pytest.raises(RunHistoryError, match="uses 'ftp', which this runhistory cannot reach yet"):
        open_run_store("ftp://example.org/ws")


def test_submit_refuses_what_cannot_submit_itself(exp: Experiment) -> None:
    with pytest.raises(JobConfigError, match="takes a ScriptRunConfig or an Estimator, got dict"):
        exp.submit({"script": "train.py"})  # type: ignore[arg-type]
    assert list(exp.get_runs()) == []


def test_the_log_of_a_run_that_is_no_job_is_empty(exp: Experiment, capsys: pytest.CaptureFixture[str]) -> None:
    run = exp.start_logging()
    run.complete()
    assert follow_log(run, sys.stdout) == "Completed"
    assert capsys.readouterr().out == ""

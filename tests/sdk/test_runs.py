"""Runs: identity, status, children, context managers, tags, properties, details."""

from __future__ import annotations

import pytest

from runhistory import Experiment, Run, Workspace
from runhistory.core.errors import InvalidNameError, MetricValueError, NotFoundError, RunFinishedError, RunHistoryError
from tests.postgres import BACKENDS

pytestmark = BACKENDS  # every test on SQLite and on PostgreSQL


def test_identity_numbers_and_display_names(exp: Experiment) -> None:
    first = exp.start_logging()
    second = exp.start_logging(display_name="baseline")
    assert (first.number, second.number) == (1, 2)
    assert first.id != second.id and first.id.startswith("unit_")
    assert second.display_name == "baseline"
    assert first.display_name == first.id
    assert first.experiment == exp and first.parent is None
    assert first.status == "Running" and first.get_status() == "Running"
    assert Run(exp, first.id) == first


def test_run_of_another_experiment_is_not_found(ws: Workspace, exp: Experiment) -> None:
    other = Experiment(ws, "other").start_logging()
    with pytest.raises(NotFoundError, match="No run"):
        Run(exp, other.id)


@pytest.mark.parametrize(
    ("end", "status"), [("complete", "Completed"), ("fail", "Failed"), ("cancel", "Canceled")]
)
def test_ending_a_run_sets_its_status_and_end_time(exp: Experiment, end: str, status: str) -> None:
    run = exp.start_logging()
    getattr(run, end)()
    details = run.get_details()
    assert run.status == status and details["status"] == status
    assert details["endTimeUtc"] is not None and details["startTimeUtc"] <= details["endTimeUtc"]


def test_fail_records_the_error(exp: Experiment) -> None:
    run = exp.start_logging()
    run.fail(ValueError("bad batch"))
    assert run.get_details()["error"]["message"] == "ValueError: bad batch"
    other = exp.start_logging()
    other.fail("out of memory", error_code="OOM")
    assert other.get_details()["error"] == {"message": "out of memory", "code": "OOM"}


def test_interactive_run_as_context_manager(exp: Experiment) -> None:
    with exp.start_logging() as run:
        run.log("x", 1)
    assert run.status == "Completed"
    with pytest.raises(ZeroDivisionError):
        with exp.start_logging() as failing:
            1 / 0
    assert failing.status == "Failed"
    assert "ZeroDivisionError: division by zero" in failing.get_details()["error"]["message"]


def test_child_runs_complete_or_fail_with_the_exception_text(exp: Experiment) -> None:
    root = exp.start_logging()
    with root.child_run("alpha0.1") as child:
        child.log("mse", 3.5)
    with pytest.raises(RuntimeError):
        with root.child_run("alpha0.2") as broken:
            raise RuntimeError("diverged at step 7")
    assert child.status == "Completed" and child.parent == root
    assert broken.status == "Failed"
    assert broken.get_details()["error"]["message"] == "RuntimeError: diverged at step 7"
    assert [c.display_name for c in root.get_children()] == ["alpha0.1", "alpha0.2"]
    assert root.status == "Running"


def test_children_recursive_and_numbering(exp: Experiment) -> None:
    root = exp.start_logging()
    child = root.child_run("child")
    grandchild = child.child_run("grandchild")
    assert [r.id for r in root.get_children(recursive=True)] == [child.id, grandchild.id]
    assert root.get_children() == [child]
    assert grandchild.parent == child and grandchild.parent.parent == root
    assert (root.number, child.number, grandchild.number) == (1, 2, 3)


def test_get_runs_filters_and_orders_newest_first(exp: Experiment) -> None:
    first = exp.start_logging()
    first.tag("sweep", "lr")
    first.complete()
    second = exp.start_logging()
    child = second.child_run("c")
    second.set_tags({"sweep": "wd", "best": None})
    assert [r.id for r in exp.get_runs()] == [second.id, first.id]
    assert [r.id for r in exp.get_runs(include_children=True)] == [child.id, second.id, first.id]
    assert [r.id for r in exp.get_runs(status="Completed")] == [first.id]
    assert [r.id for r in exp.get_runs(tags="best")] == [second.id]
    assert [r.id for r in exp.get_runs(tags={"sweep": "lr"})] == [first.id]
    assert [r.id for r in exp.get_runs(tags=["sweep", "best"])] == [second.id]
    with pytest.raises(RunHistoryError, match="Unknown run status 'Done'"):
        exp.get_runs(status="Done")


def test_experiments_list_and_get_or_create(ws: Workspace) -> None:
    a = Experiment(ws, "a-exp")
    assert Experiment(ws, "a-exp") == a
    Experiment(ws, "b.exp")
    assert [e.name for e in Experiment.list(ws)] == ["a-exp", "b.exp"]


@pytest.mark.parametrize("bad", ["", "has space", "-leading", "x" * 256, "new\nline", 7])
def test_bad_experiment_names(ws: Workspace, bad: object) -> None:
    with pytest.raises(InvalidNameError, match="Experiment name"):
        Experiment(ws, bad)  # type: ignore[arg-type]


def test_tags_and_properties(exp: Experiment) -> None:
    run = exp.start_logging()
    run.tag("model", "ridge")
    run.tag("quick")
    run.set_tags({"model": "lasso", "seed": 3})
    assert run.get_tags() == {"model": "lasso", "quick": "", "seed": "3"}
    run.add_properties({"commit": "abc123"})
    run.add_properties({"commit": "abc123", "data": "diabetes"})
    with pytest.raises(RunHistoryError, match="Property 'commit' .* cannot change"):
        run.add_properties({"commit": "def456", "other": "x"})
    assert run.get_properties() == {"commit": "abc123", "data": "diabetes"}
    with pytest.raises(InvalidNameError, match="tag name"):
        run.tag("", "x")
    # NUL is refused the same way on every store (PostgreSQL cannot keep it), and nothing changes
    with pytest.raises(MetricValueError, match=r"tag 'model' of run .* contains a NUL character"):
        run.set_tags({"fine": "yes", "model": "a\x00b"})
    with pytest.raises(MetricValueError, match=r"property 'note' of run .* contains a NUL character"):
        run.add_properties({"note": "\x00"})
    assert run.get_tags() == {"model": "lasso", "quick": "", "seed": "3"}
    assert run.get_properties() == {"commit": "abc123", "data": "diabetes"}


def test_details_carry_identity_tags_and_properties(exp: Experiment) -> None:
    run = exp.start_logging(display_name="d")
    run.tag("k", "v")
    details = run.get_details()
    assert details["runId"] == run.id and details["runNumber"] == 1
    assert details["displayName"] == "d" and details["experiment"] == "unit"
    assert details["tags"] == {"k": "v"} and details["properties"] == {}
    assert details["status"] == "Running" and details["endTimeUtc"] is None


def test_no_child_runs_or_metrics_after_the_run_ended(exp: Experiment) -> None:
    run = exp.start_logging()
    run.log("kept", 1.0)
    run.complete()
    with pytest.raises(RunFinishedError, match=f"run {run.id} has ended \\(Completed\\)"):
        run.log("late", 2.0)
    with pytest.raises(RunFinishedError):
        run.log("kept", 3.0)
    with pytest.raises(RunFinishedError):
        run.child_run("late-child")
    assert run.get_metrics() == {"kept": 1.0}


def test_ending_twice_keeps_the_first_status(exp: Experiment) -> None:
    run = exp.start_logging()
    run.complete()
    run.fail("too late")
    assert run.status == "Completed"


def test_get_context_outside_a_job_is_an_offline_run(capsys: pytest.CaptureFixture) -> None:
    run = Run.get_context()
    run.log("accuracy", 0.9)
    assert run.get_metrics() == {"accuracy": 0.9}
    assert "accuracy" in capsys.readouterr().out
    with pytest.raises(NotFoundError, match="RUNHISTORY_RUN_ID"):
        Run.get_context(allow_offline=False)


def test_get_context_inside_a_job_returns_the_jobs_run(
    ws: Workspace, exp: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = exp.start_logging()
    monkeypatch.setenv("RUNHISTORY_TRACKING_URI", ws.tracking_uri)
    monkeypatch.setenv("RUNHISTORY_ARTIFACT_URI", ws.artifact_uri)
    monkeypatch.setenv("RUNHISTORY_RUN_ID", run.id)
    assert Run.get_context(allow_offline=False) == run

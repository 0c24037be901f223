"""``runhistory runs cancel`` and ``runs fail``: end any run by hand; ``runs list`` shows NotResponding."""

from __future__ import annotations

from typing import Callable

import pytest
from click.testing import Result

from runhistory import Experiment, Workspace
from runhistory.store import owners
from runhistory.store.base import RunOwner, RunStatus

from tests.cli.support import Populated, assert_one_line_error, row_of


def test_runs_cancel_ends_a_running_run_in_one_line(populated: Populated, invoke: Callable[..., Result]) -> None:
    run = populated.running
    result = invoke("runs", "cancel", run.id, "-w", str(populated.path))
    assert result.exit_code == 0, result.output
    assert result.output == f"Run cifar:1 ({run.id}) is Canceled.\n"
    assert run.get_status() == RunStatus.CANCELED
    assert run.get_metrics() == {"step_loss": 0.5}  # what it logged is kept


def test_runs_fail_records_the_message_and_takes_experiment_number(
    populated: Populated, invoke: Callable[..., Result]
) -> None:
    result = invoke("runs", "fail", "cifar:1", "--message", "node lost power", "-w", str(populated.path))
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("is Failed.")
    error = populated.running.get_details()["error"]
    assert (populated.running.get_status(), error["message"], error["code"]) == (
        RunStatus.FAILED,
        "node lost power",
        "FailedByUser",
    )


def test_runs_fail_without_a_message_says_it_was_failed_by_hand(
    populated: Populated, invoke: Callable[..., Result]
) -> None:
    assert invoke("runs", "fail", populated.running.id, "-w", str(populated.path)).exit_code == 0
    assert "by hand" in populated.running.get_details()["error"]["message"]


@pytest.mark.parametrize("verb", ["cancel", "fail"])
def test_ending_a_run_that_has_ended_is_one_sentence_and_changes_nothing(
    populated: Populated, invoke: Callable[..., Result], verb: str
) -> None:
    baseline = populated.baseline
    before = baseline.get_details()
    result = invoke("runs", verb, "mnist:1", "-w", str(populated.path))
    assert_one_line_error(result, "mnist:1", "has already ended", "Completed", "nothing was changed")
    assert baseline.get_details() == before


def test_ending_an_unknown_run_is_one_sentence(populated: Populated, invoke: Callable[..., Result]) -> None:
    assert_one_line_error(invoke("runs", "cancel", "nope", "-w", str(populated.path)), "No run 'nope'")


def test_a_not_responding_run_is_listed_and_shown_as_such_and_can_be_failed_by_hand(
    populated: Populated, invoke: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws: Workspace = populated.workspace
    elsewhere = RunOwner(host="laptop-asleep", machine="0" * 32, pid=4242, start_time=1.0)
    record = ws.store.create_run(Experiment(ws, "remote").id, display_name="far", owner=elsewhere)
    monkeypatch.setattr(owners, "OWNER_LOST_AFTER_S", 0.0)
    monkeypatch.setattr(owners, "OWNER_HEARTBEAT_TIMEOUT_S", 0.0)  # its heartbeat is silent from now on
    listed = invoke("runs", "list", "--status", "notresponding", "-w", str(populated.path))
    assert listed.exit_code == 0, listed.output
    assert row_of(listed.output, "remote")[3] == RunStatus.NOT_RESPONDING
    shown = invoke("runs", "show", record.id, "-w", str(populated.path))
    assert "NotResponding" in shown.output
    assert invoke("runs", "fail", record.id, "-w", str(populated.path)).exit_code == 0
    assert ws.get_run(record.id).status == RunStatus.FAILED

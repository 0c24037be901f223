"""Tags and properties of a page of runs in one read (the runs table's tag and property columns)."""

from __future__ import annotations

import pytest

from runhistory import Experiment
from runhistory.core.errors import RunHistoryError
from runhistory.store.base import MAX_STATS_RUNS
from tests.postgres import BACKENDS

pytestmark = BACKENDS


def test_tags_and_properties_of_many_runs_match_one_read_per_run(exp: Experiment) -> None:
    runs = [exp.start_logging() for _ in range(5)]
    for number, run in enumerate(runs):
        if number % 2 == 0:
            run.set_tags({"model": f"ridge-{number}", "empty": None, "ünï": "ç"})
        if number != 3:
            run.add_properties({"alpha": str(number / 10), "<b>": "x"})
    ids = [run.id for run in runs]
    store = exp.workspace.store
    tags = store.get_tags_of_runs([*ids, ids[0], "no-such-run"])
    properties = store.get_properties_of_runs(ids)
    assert list(tags) == [*ids, "no-such-run"] and tags["no-such-run"] == {}
    for run_id in ids:
        assert tags[run_id] == store.get_tags(run_id)
        assert properties[run_id] == store.get_properties(run_id)
    assert tags[ids[0]] == {"empty": "", "model": "ridge-0", "ünï": "ç"} and tags[ids[1]] == {}
    assert properties[ids[3]] == {} and properties[ids[4]] == {"<b>": "x", "alpha": "0.4"}


def test_a_bad_list_of_runs_is_one_sentence(exp: Experiment) -> None:
    store = exp.workspace.store
    with pytest.raises(RunHistoryError, match="Tags of runs take a list of run ids"):
        store.get_tags_of_runs("one-id")
    with pytest.raises(RunHistoryError, match=f"at most {MAX_STATS_RUNS} runs"):
        store.get_properties_of_runs([f"run-{n}" for n in range(MAX_STATS_RUNS + 1)])

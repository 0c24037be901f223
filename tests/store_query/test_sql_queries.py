"""Run filters and sort keys in the SQL store, on SQLite and PostgreSQL, through the SDK too."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from runhistory import Experiment, Workspace
from runhistory.core.errors import NotFoundError
from runhistory.store.base import RunFilter
from runhistory.store.query import QueryError

from tests.postgres import BACKENDS

pytestmark = BACKENDS

# name -> (mse values logged, tags, properties)
RUNS = {
    "a": ([5.0, 3.0, 4.0], {"model": "ridge", "team": "Vision"}, {"alpha": "0.1"}),
    "b": ([2.0, 1.0], {"model": "lasso"}, {"alpha": "0.4"}),
    "c": ([9.0, 8.0, 7.0, 6.0], {"model": "Ridge"}, {"alpha": "10"}),
    "d": ([], {"model": "ridge", "note": "a' OR 1=1 --"}, {"alpha": "9"}),
    "e": ([4.5, float("nan")], {"path": "C:\\temp"}, {"alpha": "n/a"}),
}


@dataclass
class Sweep:
    ws: Workspace
    exp: Experiment
    ids: dict[str, str]  # name -> run id

    def names(self, query: str | None = None, order_by: tuple[str, ...] = (), **more) -> list[str]:
        by_id = {run_id: name for name, run_id in self.ids.items()}
        run_filter = RunFilter(experiment_id=self.exp.id, query=query, order_by=order_by, **more)
        return [by_id[record.id] for record in self.ws.store.list_runs(run_filter)]

    def count(self, query: str) -> int:
        return self.ws.store.count_runs(RunFilter(experiment_id=self.exp.id, query=query))


@pytest.fixture
def sweep(ws: Workspace) -> Sweep:
    exp = Experiment(ws, "sweep")
    ids = {}
    for name, (values, run_tags, run_properties) in RUNS.items():
        run = exp.start_logging(display_name=name)
        for value in values:
            run.log("mse", value)
        if name == "d":
            run.log("word", "hello")
            run.log("val/loss", 0.25)
        if run_tags:
            run.set_tags(run_tags)
        run.add_properties(run_properties)
        run.complete() if name != "b" else run.fail()
        ids[name] = run.id
    return Sweep(ws, exp, ids)


def test_comparisons_on_the_last_value_and_the_stats_of_a_metric(sweep: Sweep) -> None:
    assert set(sweep.names("metrics.mse < 4.1")) == {"a", "b"}
    assert set(sweep.names("metrics.mse.last >= 6")) == {"c"}
    assert set(sweep.names("metrics.mse.min <= 3")) == {"a", "b"}
    assert set(sweep.names("metrics.mse.max > 4.9")) == {"a", "c"}
    assert set(sweep.names("metrics.mse.count = 2")) == {"b", "e"}
    assert set(sweep.names("metrics.mse is null")) == {"d", "e"}  # e's last value is NaN: no number
    assert set(sweep.names("metrics.mse.max is not null")) == {"a", "b", "c", "e"}
    assert set(sweep.names("metrics.`val/loss` = 0.25")) == {"d"}
    assert sweep.names("metrics.word = 1") == []  # a string series has no number


def test_and_or_not_parentheses_and_in(sweep: Sweep) -> None:
    assert set(sweep.names("metrics.mse <= 4 and tags.model = 'ridge'")) == {"a"}
    assert set(sweep.names("metrics.mse < 2 or tags.model = 'ridge'")) == {"a", "b", "d"}
    assert set(sweep.names("not (metrics.mse < 2 or tags.model = 'ridge')")) == {"c", "e"}
    assert set(sweep.names("(metrics.mse < 2 or metrics.mse > 6) and not tags.model = 'lasso'")) == set()
    assert set(sweep.names("tags.model in ('ridge', 'lasso')")) == {"a", "b", "d"}
    assert set(sweep.names("tags.model not in ('ridge', 'lasso')")) == {"c"}  # runs without the tag: false
    assert set(sweep.names('attributes.status in ("Failed", "Canceled")')) == {"b"}
    assert set(sweep.names("attributes.display_name != 'a' and attributes.number <= 3")) == {"b", "c"}
    assert set(sweep.names("attributes.end_time >= 0 and attributes.duration >= 0")) == set(RUNS)


def test_like_is_case_sensitive_and_ilike_is_not(sweep: Sweep) -> None:
    assert set(sweep.names("tags.model like 'r%'")) == {"a", "d"}
    assert set(sweep.names("tags.model like 'R_dge'")) == {"c"}
    assert set(sweep.names("tags.model ilike 'R%'")) == {"a", "c", "d"}
    assert set(sweep.names("tags.team like '*'")) == set()  # GLOB's own wildcards are plain characters
    assert set(sweep.names("params.alpha like 'n/%'")) == {"e"}
    assert set(sweep.names(r"tags.path like 'C:\\%'")) == {"e"}  # a backslash is a plain character
    assert set(sweep.names(r"tags.path ilike 'c:\\TEMP'")) == {"e"}


def test_tags_and_properties_compare_as_numbers_with_a_number(sweep: Sweep) -> None:
    assert set(sweep.names("properties.alpha > 5")) == {"c", "d"}  # "10" > 5 although "10" < "5" as text
    assert set(sweep.names("params.alpha = 0.40")) == {"b"}
    assert set(sweep.names("params.alpha in (0.1, 9)")) == {"a", "d"}
    assert set(sweep.names("properties.alpha < 100")) == {"a", "b", "c", "d"}  # "n/a" is no number
    assert set(sweep.names("properties.alpha = 'n/a'")) == {"e"}
    assert set(sweep.names("tags.team is null")) == {"b", "c", "d", "e"}
    assert set(sweep.names("tags.path is not null and tags.team is null")) == {"e"}


def test_user_text_reaches_sql_only_as_bound_parameters(sweep: Sweep) -> None:
    assert sweep.names('tags.note = "a\' OR 1=1 --"') == ["d"]
    assert sweep.names("tags.note = 'x'' OR ''1''=''1'".replace("''", "\\'")) == []
    assert sweep.names("tags.`model' OR '1'='1` is not null") == []
    assert sweep.names('tags.`"model"` = "ridge"') == []
    assert sweep.names("tags.model = 'ridge\"; DROP TABLE runs; --'") == []
    assert len(sweep.names()) == len(RUNS)  # the table is still there


def test_runs_lacking_a_sort_key_come_last_either_way(sweep: Sweep) -> None:
    assert sweep.names(order_by=("metrics.mse asc",)) == ["b", "a", "c", "e", "d"]  # e (NaN) and d: newest first
    assert sweep.names(order_by=("metrics.mse desc",)) == ["c", "a", "b", "e", "d"]
    assert sweep.names(order_by=("metrics.mse.min desc",)) == ["c", "e", "a", "b", "d"]
    assert sweep.names(order_by=("properties.alpha asc",)) == ["a", "b", "d", "c", "e"]  # numbers as numbers
    # (not "Ridge": how it sorts beside "ridge" is the database's collation)
    assert sweep.names("tags.model != 'Ridge' or tags.model is null", ("tags.model desc", "metrics.mse asc")) == ["a", "d", "b", "e"]
    assert sweep.names(order_by=("attributes.number",)) == list(RUNS)
    assert sweep.names(order_by=("attributes.status desc", "attributes.display_name desc")) == ["b", "e", "d", "c", "a"]
    assert sweep.names(order_by=("attributes.duration desc",))[-1:] != []


def test_pages_of_a_sorted_and_filtered_listing(sweep: Sweep) -> None:
    order = ("metrics.mse.max asc",)
    whole = sweep.names("metrics.mse.max is not null or tags.model is not null", order)
    assert whole == ["b", "e", "a", "c", "d"]
    pages = [sweep.names("metrics.mse.max is not null or tags.model is not null", order, limit=2, offset=at) for at in (0, 2, 4)]
    assert pages == [whole[0:2], whole[2:4], whole[4:]]
    assert sweep.count("metrics.mse.max is not null") == 4
    assert sweep.count("metrics.mse > 100") == 0


def test_the_sdk_filters_and_sorts_runs_of_an_experiment_and_across_experiments(sweep: Sweep) -> None:
    runs = list(sweep.exp.get_runs(filter="metrics.mse < 5", order_by="metrics.mse asc"))
    assert [run.display_name for run in runs] == ["b", "a"]
    runs = list(sweep.exp.get_runs(filter="not tags.model = 'Ridge'", order_by=["tags.model asc", "attributes.number desc"]))
    assert [run.display_name for run in runs] == ["b", "d", "a", "e"]
    other = Experiment(sweep.ws, "other")
    extra = other.start_logging(display_name="x")
    extra.log("mse", 0.5)
    child = extra.child_run("kid")
    child.log("mse", 0.1)
    child.complete()
    extra.complete()
    found = [run.display_name for run in sweep.ws.search_runs(filter="metrics.mse < 2", order_by="metrics.mse")]
    assert found == ["kid", "x", "b"]
    found = [run.display_name for run in sweep.ws.search_runs("metrics.mse < 2", "metrics.mse", include_children=False)]
    assert found == ["x", "b"]
    found = [run.display_name for run in sweep.ws.search_runs("metrics.mse < 2", experiments=["other"])]
    assert sorted(found) == ["kid", "x"]
    assert list(sweep.ws.search_runs(experiments=[])) == []
    with pytest.raises(NotFoundError, match="No experiment 'nope'"):
        sweep.ws.search_runs(experiments=["nope"])


def test_many_sorted_runs_are_read_a_page_at_a_time_each_once(ws: Workspace) -> None:
    exp = Experiment(ws, "many")
    for number in range(250):
        run = exp.start_logging()
        run.log("loss", float((number * 37) % 250))
        run.complete()
    losses = [run.get_metrics("loss")["loss"] for run in exp.get_runs(order_by="metrics.loss desc")]
    assert losses == [float(value) for value in range(249, -1, -1)]


def test_a_bad_filter_or_sort_key_is_refused_when_asked(sweep: Sweep) -> None:
    with pytest.raises(QueryError, match="Bad run filter at column 14: expected a value after '<'"):
        sweep.exp.get_runs(filter="metrics.mse <")
    with pytest.raises(QueryError, match="Bad sort key"):
        sweep.ws.search_runs(order_by="metrics.mse sideways")
    with pytest.raises(QueryError, match="unknown attribute"):
        sweep.ws.store.count_runs(RunFilter(query="attributes.colour = 'red'"))

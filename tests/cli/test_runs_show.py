"""``runhistory runs show RUN``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from runhistory import Experiment, Workspace
from runhistory.cli.runs import DEFAULT_METRICS
from runhistory.store.base import MetricBatch, MetricKind, MetricSource

from tests.cli.support import assert_fits, assert_one_line_error, row_of


@pytest.fixture
def shown(populated, invoke) -> str:
    """The output of ``runs show mnist:1`` (the baseline run)."""
    result = invoke("runs", "show", "mnist:1", "-w", str(populated.path))
    assert result.exit_code == 0, result.output
    assert_fits(result.stdout)
    return result.stdout


def _section(text: str, title: str) -> str:
    """The lines of one section of ``runs show``, from its title to the next blank line."""
    lines = text.splitlines()
    start = lines.index(title)
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].strip()), len(lines))
    return "\n".join(lines[start:end])


def test_header_has_identity_status_and_times(populated, shown):
    assert row_of(shown, "Run") == ["Run", "mnist:1"]
    assert row_of(shown, "Id") == ["Id", populated.baseline.id]
    assert row_of(shown, "Name") == ["Name", "baseline"]
    assert row_of(shown, "Status") == ["Status", "Completed"]
    assert row_of(shown, "Type") == ["Type", "interactive"]
    for key in ("Created", "Started", "Ended"):
        assert len(row_of(shown, key)) == 3  # key, date, time
    assert row_of(shown, "Duration")[1].endswith("s")
    assert "Error" not in shown


def test_children_are_a_tree(shown):
    tree = _section(shown, "Children").splitlines()
    assert tree[1].split() == ["#1", "baseline", "Completed"]
    assert tree[2].split() == ["├──", "#2", "c1", "Completed"]
    assert tree[3].split() == ["│", "└──", "#3", "grandchild", "Completed"]
    assert tree[4].split() == ["└──", "#4", "c2", "Failed"]


def test_metrics_show_kind_count_and_last_value(shown):
    metrics = _section(shown, "Metrics")
    assert row_of(metrics, "loss") == ["loss", "scalar", "5", "0.2"]
    assert row_of(metrics, "accuracy") == ["accuracy", "scalar", "1", "0.987654"]
    assert row_of(metrics, "diverged") == ["diverged", "scalar", "1", "nan"]
    assert row_of(metrics, "bound") == ["bound", "scalar", "1", "inf"]
    assert row_of(metrics, "note") == ["note", "scalar", "1", "hello", "world"]
    assert row_of(metrics, "epochs") == ["epochs", "scalar", "1", "12"]
    assert row_of(metrics, "lrs") == ["lrs", "list", "3", "0.001"]
    assert row_of(metrics, "roc") == ["roc", "table", "2", "fpr=0.2,", "tpr=0.9"]
    assert "depth" not in metrics  # the grandchild's metric is its own


def test_tags_properties_and_files(shown):
    assert row_of(_section(shown, "Tags"), "optimizer") == ["optimizer", "adam"]
    assert row_of(_section(shown, "Tags"), "best") == ["best"]
    assert row_of(_section(shown, "Properties"), "framework") == ["framework", "torch"]
    assert row_of(_section(shown, "Files"), "outputs/notes.txt") == ["outputs/notes.txt", "1.5", "KiB"]


def test_by_id_shows_the_same_run(populated, invoke, shown):
    by_id = invoke("runs", "show", populated.baseline.id, "-w", str(populated.path))
    assert by_id.exit_code == 0
    assert by_id.stdout == shown


def test_a_child_shows_its_parent_and_its_own_children(populated, invoke):
    result = invoke("runs", "show", "mnist:2", "-w", str(populated.path))
    assert row_of(result.stdout, "Parent") == ["Parent", populated.baseline.id]
    assert [line.split() for line in _section(result.stdout, "Children").splitlines()[1:]] == [
        ["#2", "c1", "Completed"],
        ["└──", "#3", "grandchild", "Completed"],
    ]
    assert "Metrics: none" in result.stdout


def test_a_failed_run_shows_its_error(populated, invoke):
    result = invoke("runs", "show", "mnist:4", "-w", str(populated.path))
    assert row_of(result.stdout, "Status") == ["Status", "Failed"]
    assert row_of(result.stdout, "Error") == ["Error", "ValueError:", "bad", "learning", "rate"]
    assert "Traceback" not in result.stdout  # the message, not the stored traceback
    assert "Children: none" in result.stdout


def test_a_running_run_has_no_end_but_a_duration_so_far(populated, invoke):
    result = invoke("runs", "show", "cifar:1", "-w", str(populated.path))
    assert row_of(result.stdout, "Status") == ["Status", "Running"]
    assert row_of(result.stdout, "Ended") == ["Ended"]
    assert len(row_of(result.stdout, "Duration")) == 2
    assert row_of(result.stdout, "step_loss") == ["step_loss", "scalar", "1", "0.5"]


@pytest.mark.parametrize("ref", ["nope", "mnist:99", "nosuch:1", "mnist:x"])
def test_unknown_run_is_a_one_line_error(populated, invoke, ref):
    assert_one_line_error(invoke("runs", "show", ref, "-w", str(populated.path)), f"No run {ref!r}")


def test_missing_run_argument_is_a_one_line_error(populated, invoke):
    assert_one_line_error(invoke("runs", "show", "-w", str(populated.path)), "Missing argument 'RUN'")


def test_json_has_the_whole_run_with_raw_values(populated, invoke):
    p = populated
    result = invoke("runs", "show", "mnist:1", "-o", "json", "-w", str(p.path))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["id"] == p.baseline.id and data["status"] == "Completed" and data["number"] == 1
    assert data["start_time"] == p.workspace.store.get_run(p.baseline.id).start_time  # seconds since the epoch, as stored
    assert data["children"] == [p.child.id, p.failed_child.id]
    assert data["metrics"]["loss"] == {"kind": "scalar", "count": 5, "last_value": 0.2}
    assert data["metrics"]["roc"]["last_value"] == {"fpr": 0.2, "tpr": 0.9}
    assert data["tags"] == {"optimizer": "adam", "best": ""}
    assert data["properties"] == {"framework": "torch"}
    assert data["files"] == {"outputs/notes.txt": 1500}


def test_csv_is_one_row_with_nested_values_as_json(populated, invoke):
    result = invoke("runs", "show", "mnist:1", "-o", "csv", "-w", str(populated.path))
    [row] = list(csv.DictReader(io.StringIO(result.stdout)))
    assert row["id"] == populated.baseline.id and row["parent_id"] == ""
    assert json.loads(row["files"]) == {"outputs/notes.txt": 1500}


# --- a run with many metrics ---

WIDE = 20_000  # metric names of the wide run (runs show reads their summaries in one query)


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace whose run wide:1 has WIDE series ``m00000``...: one point each, value i, except
    every 1000th, which has three points ending in -i."""
    path = tmp_path_factory.mktemp("wide") / "ws"
    run = Experiment(Workspace.create(path), "wide").start_logging()
    for i in range(WIDE):
        run.log(f"m{i:05d}", i)
        if i % 1000 == 0:
            run.log(f"m{i:05d}", 0.5)
            run.log(f"m{i:05d}", -i)
    run.complete()
    return path


def _expected_row(i: int) -> list[str]:
    return [f"m{i:05d}", "scalar", "3", str(-i)] if i % 1000 == 0 else [f"m{i:05d}", "scalar", "1", str(i)]


def test_many_metrics_show_the_first_ones_and_say_how_to_see_all(wide, invoke):
    result = invoke("runs", "show", "wide:1", "-w", str(wide))
    assert result.exit_code == 0, result.output
    assert_fits(result.stdout)
    metrics = _section(result.stdout, "Metrics").splitlines()
    assert [line.split() for line in metrics[3:-1]] == [_expected_row(i) for i in range(DEFAULT_METRICS)]
    assert metrics[-1] == f"Showing {DEFAULT_METRICS} of 20,000 metrics; --metrics 0 shows all, -o json gives data."
    assert "Tags: none" in result.stdout and "Files: none" in result.stdout  # the sections after it are there


def test_metrics_0_shows_every_count_and_last_value(wide, invoke):
    result = invoke("runs", "show", "wide:1", "--metrics", "0", "-w", str(wide))
    assert result.exit_code == 0, result.output
    metrics = _section(result.stdout, "Metrics").splitlines()
    assert metrics[1].split() == ["name", "kind", "count", "last", "value"]
    assert [line.split() for line in metrics[3:]] == [_expected_row(i) for i in range(WIDE)]
    assert "Showing" not in result.stdout


def test_metrics_n_shows_the_first_n_by_name_and_all_without_a_note(populated, invoke):
    result = invoke("runs", "show", "mnist:1", "--metrics", "3", "-w", str(populated.path))
    metrics = _section(result.stdout, "Metrics").splitlines()
    assert [line.split()[0] for line in metrics[3:-1]] == ["accuracy", "bound", "diverged"]
    assert metrics[-1].startswith("Showing 3 of 8 metrics;")
    everything = invoke("runs", "show", "mnist:1", "--metrics", "8", "-w", str(populated.path))
    assert "Showing" not in everything.stdout


def test_json_of_many_metrics_has_them_all(wide, invoke):
    result = invoke("runs", "show", "wide:1", "-o", "json", "-w", str(wide))
    metrics = json.loads(result.stdout)["metrics"]
    assert len(metrics) == WIDE
    assert metrics["m01000"] == {"kind": "scalar", "count": 3, "last_value": -1000}
    assert metrics["m19999"] == {"kind": "scalar", "count": 1, "last_value": 19999}


def test_a_long_value_ends_in_an_ellipsis_and_names_stay_readable(tmp_path, invoke):
    run = Experiment(Workspace.create(tmp_path / "ws"), "long").start_logging()
    run.log("a_metric_name_longer_than_thirty_characters", 1.5)
    run.log("text", "word " * 40)
    run.complete()
    result = invoke("runs", "show", "long:1", "-w", str(tmp_path / "ws"))
    assert_fits(result.stdout)
    metrics = _section(result.stdout, "Metrics").splitlines()
    assert row_of("\n".join(metrics), "a_metric_name_longer_than_thir") == ["a_metric_name_longer_than_thir", "scalar", "1", "1.5"]
    assert "ty_characters" in metrics[4]  # the name folds onto the next line
    text = row_of("\n".join(metrics), "text")
    assert text[:3] == ["text", "scalar", "1"] and text[-1].endswith("\u2026")


# --- a job whose series came from its own event files ---


@pytest.fixture
def job_ws(tmp_path) -> Path:
    """A run with SDK series and, as a job's supervisor reads them, a scalar and a histogram from its event files."""
    ws = Workspace.create(tmp_path / "ws")
    run = Experiment(ws, "job").start_logging()
    run.log("accuracy", 0.75)
    times = [1_700_000_000.0, 1_700_000_001.0]
    ws.store.append_metrics(
        [
            MetricBatch(run.id, "train/loss", MetricKind.SCALAR, [0.5, 0.25], [0, 10], times, source=MetricSource.EVENT_FILES),
            MetricBatch(run.id, "train/weights", MetricKind.SUMMARY, ["histograms"] * 2, [0, 10], times, source=MetricSource.EVENT_FILES),
        ]
    )
    run.complete()
    return tmp_path / "ws"


def test_series_from_event_files_show_their_source_and_summaries_their_kind_and_count(job_ws, invoke):
    result = invoke("runs", "show", "job:1", "-w", str(job_ws))
    assert result.exit_code == 0, result.output
    assert_fits(result.stdout)
    metrics = _section(result.stdout, "Metrics")
    assert metrics.splitlines()[1].split() == ["name", "kind", "count", "source", "last", "value"]
    assert row_of(metrics, "accuracy") == ["accuracy", "scalar", "1", "0.75"]
    assert row_of(metrics, "train/loss") == ["train/loss", "scalar", "2", "tensorboard", "0.25"]
    assert row_of(metrics, "train/weights") == ["train/weights", "histograms", "2", "tensorboard"]


def test_json_and_csv_give_the_source_where_there_is_one(job_ws, invoke):
    data = json.loads(invoke("runs", "show", "job:1", "-o", "json", "-w", str(job_ws)).stdout)
    assert data["metrics"] == {
        "accuracy": {"kind": "scalar", "count": 1, "last_value": 0.75},
        "train/loss": {"kind": "scalar", "count": 2, "last_value": 0.25, "source": "tensorboard"},
        "train/weights": {"kind": "summary", "count": 2, "last_value": "histograms", "source": "tensorboard"},
    }
    [row] = list(csv.DictReader(io.StringIO(invoke("runs", "show", "job:1", "-o", "csv", "-w", str(job_ws)).stdout)))
    assert json.loads(row["metrics"]) == data["metrics"]

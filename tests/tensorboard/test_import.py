"""``import_logdir``: folders of tensorboardX logs become runs and child runs, and a real TensorBoard
shows each imported run's event files once; importing again (after appending, after a new folder,
after an import killed midway) adds exactly what is new."""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from tensorboardX import SummaryWriter

from runhistory import Experiment, Run, Workspace
from runhistory.core.errors import RunHistoryError, TensorboardError
from runhistory.eventlogs.records import scan_records
from runhistory.tensorboard import Tensorboard, import_logdir
from runhistory.tensorboard.events import EventFileWriter
from runhistory.tensorboard.importer import ImportedRun

from tests.helpers import start_python, wait_until
from tests.jobs.support import tensorboard_scalars
from tests.server.support import runhistory_cli

FOLDERS = ("a", "a/train", "b", "sweep/x", "sweep/y")
LATER = "b/eval"
HEADER = 12  # a TFRecord record: length (8 bytes) and its checksum (4), payload, payload checksum (4)
STEPS = 5
HPARAMS = {"sweep/x": {"lr": 0.1, "optimizer": "adam"}, "sweep/y": {"lr": 0.01, "optimizer": "sgd"}}


def _loss(folder: str, step: int) -> float:
    return float(np.float32(((FOLDERS + (LATER,)).index(folder) + 1) / (step + 1)))


def _write_folder(logdir: Path, folder: str, steps: range = range(STEPS)) -> None:
    """One tensorboardX run: a scalar per step, a text, and hparams for the sweep's trials."""
    # A distinct file name suffix: add_hparams(name=".") opens a second writer in the same folder.
    with SummaryWriter(str(logdir / folder), filename_suffix=".scalars") as writer:
        for step in steps:
            writer.add_scalar("loss", _loss(folder, step), step)
        writer.add_text("notes", f"run {folder}", 0)
        if folder in HPARAMS:
            writer.add_hparams(HPARAMS[folder], {"hp/accuracy": 0.5}, name=".")


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    root = tmp_path / "logdir"
    for folder in FOLDERS:
        _write_folder(root, folder)
    return root


def _by_name(imported: list[ImportedRun]) -> dict[str, ImportedRun]:
    return {one.name: one for one in imported}


def _point_counts(exp: Experiment) -> dict[str, dict[str, int]]:
    """{run display name: {series: points}} over every run of the experiment."""
    return {
        run.display_name: {summary.name: summary.count for summary in run.workspace.store.get_metric_summaries(run.id)}
        for run in exp.get_runs(include_children=True)
    }


def _scalars_served(runs: list[Run]) -> dict[str, dict[str, list[list[float]]]]:
    """{TensorBoard run: {tag: [[wall, step, value], ...]}} that ``Tensorboard(runs)`` serves."""
    with Tensorboard(runs, port=0) as tb:
        assert tb.url is not None and tb.wait_for_runs(timeout=30)
        return tensorboard_scalars(tb.url)


def _record_offsets(data: bytes) -> list[int]:
    """Where each record of an event file begins (``scan_records`` gives where payloads begin)."""
    return [int(start) - HEADER for start in scan_records(data).starts]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the structure ---


def test_a_nested_folder_imports_into_runs_and_child_runs(logdir: Path, exp: Experiment) -> None:
    imported = _by_name(import_logdir(logdir, exp))
    assert list(imported) == ["a", "train", "b", "sweep/x", "sweep/y"]
    runs = {name: one.run for name, one in imported.items()}
    assert all(one.created and one.error is None for one in imported.values())
    assert runs["train"].parent is not None and runs["train"].parent.id == runs["a"].id
    assert all(runs[name].parent is None for name in ("a", "b", "sweep/x", "sweep/y"))
    assert [child.id for child in runs["a"].get_children()] == [runs["train"].id]
    for name, one in imported.items():
        folder = next(f for f in FOLDERS if f.endswith(name))
        run = runs[name]
        assert run.record.run_type == "imported" and run.get_status() == "Completed"
        assert run.display_name == name and run.get_tags()["tensorboard.logdir"] == str(logdir / folder)
        metrics = run.get_metrics()
        assert metrics["loss"] == [_loss(folder, step) for step in range(STEPS)], name
        assert list(run.get_metric_series(["loss"])["loss"].steps) == list(range(STEPS))
        assert metrics["notes/text_summary"] == f"run {folder}"
        # its logs/ files are the folder's event files, byte for byte
        files = sorted(path for path in (logdir / folder).iterdir() if path.is_file())
        assert sorted(n for n in run.get_file_names() if n.startswith("logs/")) == [f"logs/{p.name}" for p in files]
        for path in files:
            assert _sha(run.workspace.artifacts.read(run.id, f"logs/{path.name}")) == _sha(path.read_bytes())
        assert one.points == sum(1 if isinstance(v, str) or not isinstance(v, list) else len(v) for v in metrics.values())


def test_tensorboard_shows_each_imported_runs_scalars_once(logdir: Path, exp: Experiment) -> None:
    imported = _by_name(import_logdir(logdir, exp))
    a, b = imported["a"].run, imported["b"].run
    served = _scalars_served([a, b])
    assert {tb_run: {tag: len(points) for tag, points in tags.items()} for tb_run, tags in served.items()} == {
        f"a-{a.number}": {"loss": STEPS},
        f"a-{a.number}/train-{imported['train'].run.number}": {"loss": STEPS},
        f"b-{b.number}": {"loss": STEPS},
    }
    for tb_run, folder in ((f"a-{a.number}", "a"), (f"b-{b.number}", "b")):
        assert [[p[1], p[2]] for p in served[tb_run]["loss"]] == [[s, _loss(folder, s)] for s in range(STEPS)]
    # the wall times TensorBoard serves are the events' own, as the run history keeps them
    series = a.get_metric_series(["loss"])["loss"]
    assert [p[0] for p in served[f"a-{a.number}"]["loss"]] == pytest.approx(list(series.times), abs=1e-6)


def test_hparams_from_add_hparams_become_properties(logdir: Path, exp: Experiment) -> None:
    imported = _by_name(import_logdir(logdir, exp))
    for name, hparams in HPARAMS.items():
        run = imported[name].run
        assert run.get_properties() == {key: str(value) for key, value in hparams.items()}
        assert run.get_tags()["tensorboard.session_status"] == "success"
        assert run.get_metrics()["hp/accuracy"] == 0.5
    assert imported["a"].run.get_properties() == {}


# --- importing again ---


def test_importing_again_adds_nothing(logdir: Path, exp: Experiment) -> None:
    first = import_logdir(logdir, exp)
    before = _point_counts(exp)
    again = import_logdir(logdir, exp)
    assert [(one.name, one.run.id) for one in again] == [(one.name, one.run.id) for one in first]
    assert all(not one.created and one.points == 0 and one.bytes == 0 for one in again)
    assert _point_counts(exp) == before
    assert len(list(exp.get_runs(include_children=True))) == len(FOLDERS)


def test_events_appended_to_a_file_import_exactly_once(logdir: Path, exp: Experiment, tmp_path: Path) -> None:
    import_logdir(logdir, exp)
    [path] = (logdir / "b").glob("*.scalars")
    more = tmp_path / "more"
    with SummaryWriter(str(more)) as writer:  # three more events, as the same writer would append them
        for step in range(STEPS, STEPS + 3):
            writer.add_scalar("loss", _loss("b", step), step)
    [extra] = more.iterdir()
    data = extra.read_bytes()
    with open(path, "ab") as out:
        out.write(data[_record_offsets(data)[1] :])  # all but the file_version event that opens a file
    [again_b] = [one for one in import_logdir(logdir, exp) if one.name == "b"]
    assert again_b.points == 3 and not again_b.created
    run = again_b.run
    assert run.get_metrics()["loss"] == [_loss("b", step) for step in range(STEPS + 3)]
    assert list(run.get_metric_series(["loss"])["loss"].steps) == list(range(STEPS + 3))
    assert _sha(run.workspace.artifacts.read(run.id, f"logs/{path.name}")) == _sha(path.read_bytes())
    assert all(one.points == 0 for one in import_logdir(logdir, exp))


def test_a_folder_added_later_becomes_a_new_run(logdir: Path, exp: Experiment) -> None:
    import_logdir(logdir, exp)
    _write_folder(logdir, LATER)
    again = _by_name(import_logdir(logdir, exp))
    assert [name for name, one in again.items() if one.created] == ["eval"]
    evaluation = again["eval"].run
    assert evaluation.parent is not None and evaluation.parent.id == again["b"].run.id
    assert again["eval"].points == STEPS + 1 and sum(one.points for one in again.values()) == STEPS + 1
    assert len(list(exp.get_runs(include_children=True))) == len(FOLDERS) + 1


def test_parent_puts_the_top_runs_under_a_given_run(logdir: Path, exp: Experiment) -> None:
    parent = exp.start_logging("sweep-parent")
    imported = _by_name(import_logdir(logdir, exp, parent=parent))
    tops = {child.display_name for child in parent.get_children()}
    assert tops == {"a", "b", "sweep/x", "sweep/y"}
    assert imported["train"].run.parent is not None and imported["train"].run.parent.id == imported["a"].run.id


def test_a_parent_of_another_experiment_is_refused_and_nothing_is_imported(logdir: Path, ws: Workspace) -> None:
    """Found in review (importer.py ``_create_run``): the store refuses each top folder's run, the
    failed folders read as new, and their child folders (a/train) become top-level runs."""
    parent = Experiment(ws, "other").start_logging("sweep")
    exp = Experiment(ws, "imp")
    with pytest.raises(RunHistoryError):
        import_logdir(logdir, exp, parent=parent)
    assert [run.display_name for run in exp.get_runs(include_children=True)] == []


# --- an import killed midway ---

BIG = 2_000_000  # about 100 MB: two pieces of a file, so the import is killed between them


def test_an_import_killed_midway_then_imported_again_has_every_point_once(tmp_path: Path) -> None:
    logdir = tmp_path / "big"
    steps = np.arange(BIG)
    values = (np.sin(steps / 1000.0)).astype(np.float32)
    with EventFileWriter(logdir / "run") as writer:
        writer.add_scalars("loss", steps, values, 1_700_000_000.0 + steps * 0.001)
    [path] = (logdir / "run").iterdir()
    ws = Workspace.create(tmp_path / "ws")
    exp = Experiment(ws, "big")
    child = start_python(
        f"""
        from runhistory import Experiment, Workspace
        from runhistory.tensorboard import import_logdir
        import_logdir({str(logdir)!r}, Experiment(Workspace.create({str(tmp_path / 'ws')!r}), "big"))
        """
    )
    try:
        def stored() -> int:
            runs = list(exp.get_runs())
            return sum(s.count for run in runs for s in ws.store.get_metric_summaries(run.id))

        wait_until(lambda: stored() > 0 or child.poll() is not None, timeout=120, what="the import to store its first piece")
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(30)
    assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""
    [run] = exp.get_runs()
    copied = ws.artifacts.list(run.id, "logs/").get(f"logs/{path.name}", 0)
    assert 0 < stored() < BIG or copied < path.stat().st_size, "the import was not stopped midway"

    [again] = import_logdir(logdir, exp)
    assert not again.created and again.run.id == run.id
    series = run.get_metric_series(["loss"])["loss"]
    assert len(series.steps) == BIG
    assert np.array_equal(np.asarray(series.steps), steps)
    assert np.array_equal(np.asarray(series.values, dtype=np.float32), values)
    assert ws.artifacts.list(run.id, "logs/")[f"logs/{path.name}"] == path.stat().st_size
    assert all(one.points == 0 for one in import_logdir(logdir, exp))


# --- what cannot be imported ---


def _missing(root: Path) -> Path:
    return root / "missing"


def _a_file(root: Path) -> Path:
    (root / "file.txt").write_text("x")
    return root / "file.txt"


def _no_event_files(root: Path) -> Path:
    (root / "empty").mkdir()
    (root / "empty" / "notes.txt").write_text("x")
    return root / "empty"


@pytest.mark.parametrize(
    ("make", "fragment"),
    [(_missing, "no such folder"), (_a_file, "it is a file"), (_no_event_files, "No TensorBoard event files")],
    ids=["missing", "a file", "no event files"],
)
def test_what_cannot_be_imported_is_said_in_one_sentence(
    tmp_path: Path, exp: Experiment, make: Callable[[Path], Path], fragment: str
) -> None:
    target = make(tmp_path)
    with pytest.raises(TensorboardError) as raised:
        import_logdir(target, exp)
    message = str(raised.value)
    assert fragment in message and "\n" not in message and message.endswith(".")
    done = runhistory_cli("import", "tensorboard", str(target), "-e", "imp", "-w", str(tmp_path / "ws"))
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def _records(path: Path) -> tuple[bytes, list[int]]:
    data = path.read_bytes()
    return data, _record_offsets(data)


def _ten_losses(folder: Path) -> Path:
    """The event file of a tensorboardX writer that logged ``loss`` = step at steps 0 to 9."""
    with SummaryWriter(str(folder)) as writer:
        for step in range(10):
            writer.add_scalar("loss", float(step), step)
    [path] = folder.iterdir()
    return path


def test_a_corrupt_record_is_skipped_and_reported_and_the_rest_imported(tmp_path: Path, exp: Experiment) -> None:
    root = tmp_path / "logs"
    path = _ten_losses(root / "run")
    data, starts = _records(path)
    damaged = bytearray(data)
    damaged[starts[5] + HEADER + 4] ^= 0xFF  # inside the payload of the record of step 4: its checksum fails
    path.write_bytes(bytes(damaged))
    reports: list[str] = []
    [one] = import_logdir(root, exp, report=reports.append)
    assert one.error is None and one.points == 9
    assert one.run.get_metrics()["loss"] == [float(step) for step in range(10) if step != 4]
    assert len(reports) == 1 and "corrupt" in reports[0] and path.name in reports[0], reports


def test_a_truncated_file_imports_its_whole_records_and_says_so(tmp_path: Path, exp: Experiment) -> None:
    root = tmp_path / "logs"
    path = _ten_losses(root / "run")
    data, starts = _records(path)
    path.write_bytes(data[: starts[-1] + HEADER + 10])  # the last record cut off in its payload
    reports: list[str] = []
    [one] = import_logdir(root, exp, report=reports.append)
    assert one.points == 9 and one.run.get_metrics()["loss"] == [float(step) for step in range(9)]
    assert len(reports) == 1 and "incomplete record" in reports[0], reports
    assert one.run.workspace.artifacts.list(one.run.id, "logs/")[f"logs/{path.name}"] == starts[-1]
    path.write_bytes(data)  # the rest arrives: the next import adds the last point only
    [again] = import_logdir(root, exp, report=reports.append)
    assert again.points == 1 and again.run.get_metrics()["loss"] == [float(step) for step in range(10)]


def test_unicode_folder_names(tmp_path: Path, exp: Experiment) -> None:
    root = tmp_path / "logs"
    for folder in ("実験-α", "実験-α/評価", "café ☕"):
        with SummaryWriter(str(root / folder)) as writer:
            writer.add_scalar("損失", 0.5, 1)
    imported = _by_name(import_logdir(root, exp))
    assert list(imported) == ["café ☕", "実験-α", "評価"]
    assert imported["評価"].run.parent is not None and imported["評価"].run.parent.id == imported["実験-α"].run.id
    assert all(one.run.get_metrics() == {"損失": 0.5} for one in imported.values())
    assert imported["café ☕"].run.get_tags()["tensorboard.logdir"] == str(root / "café ☕")
    assert all(one.points == 0 and not one.created for one in import_logdir(root, exp))
    [tags] = _scalars_served([imported["café ☕"].run]).values()
    assert {tag: len(points) for tag, points in tags.items()} == {"損失": 1}

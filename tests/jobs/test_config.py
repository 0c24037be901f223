"""Job configuration and snapshots: what is accepted, what is refused and how it is said."""

from __future__ import annotations

from pathlib import Path

import pytest

from runhistory import Estimator, Experiment, ScriptRunConfig, Workspace
from runhistory.core.errors import JobConfigError, NotFoundError, SettingError, SnapshotTooLargeError
from runhistory.jobs.snapshot import collect_snapshot
from runhistory.train.dnn import PyTorch, TensorFlow

from tests.jobs.support import write_script


def test_script_run_config_normalizes_paths_and_arguments(source: Path) -> None:
    write_script(source, "pkg/train.py", "")
    config = ScriptRunConfig(source, source / "pkg" / "train.py", ["--lr", 0.1, "--epochs", 3, Path("data")])
    assert config.source_directory == source.resolve()
    assert config.script == "pkg/train.py"
    assert config.arguments == ["--lr", "0.1", "--epochs", "3", "data"]
    assert config.target_name == "local"


def test_estimator_and_its_framework_aliases_build_arguments_from_script_params(source: Path) -> None:
    write_script(source, "train.py", "")
    estimator = TensorFlow(source_directory=source, compute_target="gpu", entry_script="train.py",
                           script_params={"--log_dir": "./logs", "--verbose": None, "--lr": 0.5})
    assert isinstance(estimator, ScriptRunConfig) and TensorFlow is Estimator and PyTorch is Estimator
    assert estimator.arguments == ["--log_dir", "./logs", "--verbose", "--lr", "0.5"]
    assert estimator.target_name == "gpu"
    with pytest.warns(UserWarning, match="ignores framework_version, use_gpu"):
        Estimator(source, entry_script="train.py", use_gpu=True, framework_version="2.0")
    with pytest.raises(TypeError, match="unexpected keyword arguments: colour"):
        Estimator(source, entry_script="train.py", colour="red")
    with pytest.raises(JobConfigError, match="needs entry_script"):
        Estimator(source)


def test_a_source_folder_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(JobConfigError, match=f"The source directory {tmp_path / 'nowhere'} does not exist"):
        ScriptRunConfig(tmp_path / "nowhere", "train.py")
    (tmp_path / "file.py").write_text("")
    with pytest.raises(JobConfigError, match="is a file, not a folder"):
        ScriptRunConfig(tmp_path / "file.py", "train.py")


def test_a_missing_script(source: Path, tmp_path: Path) -> None:
    with pytest.raises(JobConfigError, match=f"The script 'train.py' does not exist in the source directory {source}"):
        ScriptRunConfig(source, "train.py")
    outside = write_script(tmp_path, "outside.py", "")
    with pytest.raises(JobConfigError, match="is not inside the source directory"):
        ScriptRunConfig(source, outside)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--lr", {"a": 1}], "Argument 1 of train.py is dict"),
        (["--flag", True], "Argument 1 of train.py is bool True"),
        ([None], "Argument 0 of train.py is NoneType"),
        ("--lr 0.1", "must be a list of strings or numbers, got str"),
    ],
)
def test_arguments_that_are_not_strings_or_numbers(source: Path, arguments: object, message: str) -> None:
    write_script(source, "train.py", "")
    with pytest.raises(JobConfigError, match=message):
        ScriptRunConfig(source, "train.py", arguments)  # type: ignore[arg-type]


def test_other_bad_settings(source: Path) -> None:
    write_script(source, "train.py", "")
    with pytest.raises(JobConfigError, match="max_run_duration_seconds must be a positive number"):
        ScriptRunConfig(source, "train.py", max_run_duration_seconds=0)
    with pytest.raises(JobConfigError, match="Environment variable 'X'=1"):
        ScriptRunConfig(source, "train.py", environment={"X": 1})  # type: ignore[dict-item]
    with pytest.raises(JobConfigError, match="compute_target must be a compute target or its name"):
        ScriptRunConfig(source, "train.py", compute_target=3)  # type: ignore[arg-type]
    with pytest.raises(JobConfigError, match="script_params of train.py must be a dict"):
        Estimator(source, entry_script="train.py", script_params=["--x"])  # type: ignore[arg-type]


def test_an_unknown_compute_target_creates_no_run(ws: Workspace, source: Path) -> None:
    write_script(source, "train.py", "")
    exp = Experiment(ws, "unknown-target")
    with pytest.raises(NotFoundError, match=r"No compute target 'gpu-cluster' in the workspace at .* \(it has: local\)"):
        exp.submit(ScriptRunConfig(source, "train.py", compute_target="gpu-cluster"))
    assert list(exp.get_runs()) == []


def test_submit_refuses_what_is_not_a_config(exp: Experiment) -> None:
    with pytest.raises(JobConfigError, match="takes a ScriptRunConfig or an Estimator, got str"):
        exp.submit("train.py")  # type: ignore[arg-type]


def test_a_script_removed_after_configuring_is_refused_at_submit(exp: Experiment, source: Path) -> None:
    script = write_script(source, "train.py", "")
    config = ScriptRunConfig(source, "train.py")
    script.unlink()
    with pytest.raises(JobConfigError, match="does not exist"):
        exp.submit(config)


def test_the_snapshot_honours_ignore_files_at_every_level(source: Path) -> None:
    for name in ["train.py", "data/big.bin", "data/keep.bin", "debug.log", "sub/notes.log", "sub/keep.log",
                 "sub/build/x.o", ".git/HEAD", ".venv/bin/python", "pkg/__pycache__/m.pyc", ".runhistory/x.db",
                 "pkg/m.py", "cache/a"]:
        write_script(source, name, "x")
    (source / ".gitignore").write_text("*.log\ndata/*\n!data/keep.bin\ncache/\n")
    (source / ".runhistoryignore").write_text("!debug.log\n")
    (source / "sub" / ".gitignore").write_text("build/\n!keep.log\n")
    names = [file.name for file in collect_snapshot(source).files]
    assert names == [".gitignore", ".runhistoryignore", "data/keep.bin", "debug.log", "pkg/m.py",
                     "sub/.gitignore", "sub/keep.log", "train.py"]


def test_a_snapshot_over_the_limit_is_refused_before_any_run_exists(
    exp: Experiment, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_script(source, "train.py", "print('hi')\n")
    (source / "weights.bin").write_bytes(b"\0" * 300_000)
    monkeypatch.setenv("RUNHISTORY_SNAPSHOT_LIMIT_MB", "0.1")
    with pytest.raises(SnapshotTooLargeError, match=r"holds 293 KiB to snapshot, over the 0\.1 MB limit "
                                                    r"\(largest: weights\.bin \(293 KiB\)"):
        exp.submit(ScriptRunConfig(source, "train.py"))
    assert list(exp.get_runs()) == []
    monkeypatch.setenv("RUNHISTORY_SNAPSHOT_LIMIT_MB", "lots")
    with pytest.raises(SettingError, match=r"\$RUNHISTORY_SNAPSHOT_LIMIT_MB must be a positive number, not 'lots'"):
        exp.submit(ScriptRunConfig(source, "train.py"))

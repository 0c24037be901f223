"""The SDK with its files on S3: uploads, downloads, images, and TensorBoard following a run."""

from __future__ import annotations

import io
from pathlib import Path

import httpx

from runhistory import Experiment, Workspace
from runhistory.artifacts.s3 import S3ArtifactStore
from runhistory.tensorboard import Tensorboard
from tests.helpers import start_python
from tests.tensorboard.conftest import assert_grows_while_watched

# 1x1 transparent PNG
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def test_files_of_a_run_on_s3(s3_uri: str, tmp_path: Path) -> None:
    ws = Workspace(tracking_uri=tmp_path / "ws", artifact_uri=s3_uri)
    assert isinstance(ws.artifacts, S3ArtifactStore) and ws.artifact_uri == s3_uri
    run = Experiment(ws, "files").start_logging()
    (tmp_path / "model.txt").write_text("weights")
    run.upload_file("outputs/model.txt", tmp_path / "model.txt")
    run.upload_file("notes.md", io.BytesIO(b"# notes"))
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a.py").write_text("a")
    (source / "sub" / "b.py").write_text("b")
    assert run.upload_folder("code", source) == ["code/a.py", "code/sub/b.py"]
    (tmp_path / "dot.png").write_bytes(PNG)
    run.log_image("dot", path=tmp_path / "dot.png")
    names = run.get_file_names()
    images = [name for name in names if name.startswith("images/dot/")]
    assert [name for name in names if name not in images] == ["code/a.py", "code/sub/b.py", "notes.md", "outputs/model.txt"]
    assert len(images) == 1 and ws.artifacts.read(run.id, images[0]) == PNG
    assert run.get_metrics("dot") == {"dot": images[0]}
    assert run.download_file("outputs/model.txt", tmp_path / "back.txt").read_text() == "weights"
    written = run.download_files(prefix="code", output_directory=tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == ["code/a.py", "code/sub/b.py"]
    assert (tmp_path / "out" / "code" / "sub" / "b.py").read_text() == "b"
    run.complete()
    # Another process (a job, a teammate) opening the same workspace sees the same files.
    again = Workspace.create(tmp_path / "other", artifact_uri=s3_uri)
    assert again.artifacts.list(run.id) == ws.artifacts.list(run.id)


# A stand-in for a training job writing TensorBoard events into its run's logs/ on S3,
# appended every 0.2 s as the job supervisor streams them.
JOB = """
    import time
    from pathlib import Path
    from runhistory import Workspace
    from runhistory.tensorboard.events import EventFileWriter
    ws = Workspace(tracking_uri={tracking!r}, artifact_uri={artifacts!r})
    run = ws.get_run({run_id!r})
    writer = EventFileWriter(Path({local!r}))
    name = "logs/train/" + writer.path.name
    sent = 0
    step = 0
    while not Path({stop!r}).exists():
        writer.add_scalar("native_loss", 1.0 / (step + 1), step)
        writer.flush()
        data = writer.path.read_bytes()
        ws.artifacts.append(run.id, name, data[sent:], offset=sent)
        sent = len(data)
        step += 1
        time.sleep(0.2)
    writer.close()
    run.complete()
"""


def test_tensorboard_follows_a_run_whose_logs_grow_on_s3(s3_uri: str, tmp_path: Path) -> None:
    ws = Workspace(tracking_uri=tmp_path / "ws", artifact_uri=s3_uri)
    run = Experiment(ws, "follow").start_logging(display_name="job")
    stop_file = tmp_path / "stop"
    job = start_python(
        JOB.format(
            tracking=str(tmp_path / "ws"), artifacts=s3_uri, run_id=run.id, local=str(tmp_path / "local"), stop=str(stop_file)
        )
    )
    try:
        with Tensorboard([run], port=0) as board, httpx.Client(base_url=board.url, timeout=10) as client:
            assert_grows_while_watched(client, "job-1/train", "native_loss")
            stop_file.touch()
            _out, err = job.communicate(timeout=60)
            assert job.returncode == 0, err
            assert run.get_status() == "Completed"
    finally:
        stop_file.touch()
        job.kill()
        job.communicate()


def test_a_job_streams_its_logs_and_driver_log_to_s3(s3_uri: str, tmp_path: Path, monkeypatch) -> None:
    import tempfile
    import textwrap

    from runhistory import ScriptRunConfig

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the job's working folder
    ws = Workspace(tracking_uri=tmp_path / "ws", artifact_uri=s3_uri)
    source = tmp_path / "source"
    source.mkdir()
    (source / "job.py").write_text(
        textwrap.dedent(
            """
            import os, time
            os.makedirs("logs", exist_ok=True)
            with open("logs/progress.txt", "w") as log:
                for step in range(8):
                    print("step", step, flush=True)
                    log.write(f"step {step}\\n")
                    log.flush()
                    time.sleep(0.15)
            os.makedirs("outputs", exist_ok=True)
            open("outputs/model.bin", "wb").write(b"weights")
            """
        )
    )
    run = Experiment(ws, "job").submit(ScriptRunConfig(source, "job.py"))
    assert run.wait_for_completion(timeout=60)["status"] == "Completed"
    expected = "".join(f"step {step}\n" for step in range(8))
    assert ws.artifacts.read(run.id, "logs/progress.txt").decode() == expected
    assert expected in ws.artifacts.read(run.id, "system_logs/driver.log").decode()
    assert ws.artifacts.read(run.id, "outputs/model.bin") == b"weights"
    assert {"snapshot/job.py", "logs/progress.txt", "outputs/model.bin", "system_logs/driver.log"} <= set(
        run.get_file_names()
    )

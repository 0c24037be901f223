"""The package as users get it: the wheel and the sdist built from the checkout, checked by twine,
installed into a fresh venv without extras, where the SDK works on the embedded default and
against a ``runhistory server``, and every missing extra names its ``pip install``.

Real builds and installs (no mocks): a few minutes, one or two of them for the venv with every
extra. pip reaches the package index the machine's pip configuration names; the two venvs share
one download cache.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import textwrap
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from runhistory.core.sizes import format_size
from tests.helpers import python_env, stop_process
from tests.server.support import free_port

REPO = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_S = 600
INSTALL_TIMEOUT_S = 900
RUN_TIMEOUT_S = 300
SERVER_START_TIMEOUT_S = 60
NOT_COUNTED = {"pip", "setuptools"}  # what `python -m venv` puts there by itself


@dataclass(frozen=True)
class Dists:
    wheel: Path
    sdist: Path


@dataclass(frozen=True)
class Venv:
    folder: Path
    python: Path
    runhistory: Path


def _run(command: list[str | Path], timeout: float, **kwargs: object) -> subprocess.CompletedProcess:
    """Run ``command`` and fail the test, with its output, unless it exits 0."""
    done = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=timeout, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, command))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


# One worker builds the checkout at a time: two builds in one source tree race on its build/ folder.
pytestmark = pytest.mark.xdist_group("packaging")

@pytest.fixture(scope="module")
def pip_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One pip download cache for this session's venvs."""
    return tmp_path_factory.mktemp("pip-cache")


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """The wheel and the sdist of the checkout, built with the dev venv's ``build``."""
    outdir = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--wheel", "--sdist", "--outdir", outdir, REPO], BUILD_TIMEOUT_S)
    wheels, sdists = list(outdir.glob("*.whl")), list(outdir.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in outdir.iterdir())
    return Dists(wheels[0], sdists[0])


def _make_venv(folder: Path, requirement: str, pip_cache: Path) -> Venv:
    """A fresh venv in ``folder`` with ``requirement`` (the wheel, maybe with extras) installed."""
    _run([sys.executable, "-m", "venv", folder], INSTALL_TIMEOUT_S)
    python = folder / "bin" / "python"
    env = python_env(PIP_CACHE_DIR=str(pip_cache))
    env.pop("VIRTUAL_ENV", None)
    _run([python, "-m", "pip", "install", "--quiet", requirement], INSTALL_TIMEOUT_S, env=env)
    return Venv(folder, python, folder / "bin" / "runhistory")


def _distribution_count(venv: Venv) -> int:
    """How many distributions the venv holds, but what every venv has (pip, setuptools)."""
    listed = _run([venv.python, "-m", "pip", "list", "--format=json"], RUN_TIMEOUT_S).stdout
    return len([dist for dist in json.loads(listed) if dist["name"].lower() not in NOT_COUNTED])


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory, dists: Dists, pip_cache: Path) -> Venv:
    """A fresh venv with the wheel and no extras."""
    venv = _make_venv(tmp_path_factory.mktemp("venv") / "plain", str(dists.wheel), pip_cache)
    print(f"\nwheel {dists.wheel.name}: {format_size(dists.wheel.stat().st_size)}; "
          f"a venv without extras holds {_distribution_count(venv)} distributions")
    return venv


def _python(venv: Venv, code: str, folder: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -c code ARGS`` in ``venv``, in ``folder``, with a config folder (spool, credentials)
    of its own there (not checked: the caller looks at the result)."""
    return _in_venv([str(venv.python), "-c", textwrap.dedent(code), *args], folder)


def _in_venv(command: list[str], folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        command,
        cwd=folder,
        env=python_env(RUNHISTORY_CONFIG_DIR=str(folder / "home")),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )


def _ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, f"exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _last_json(output: str) -> object:
    return json.loads(output.strip().splitlines()[-1])


# --- the distributions ---


def test_twine_accepts_the_wheel_and_the_sdist(dists: Dists) -> None:
    done = _run([sys.executable, "-m", "twine", "check", "--strict", dists.wheel, dists.sdist], RUN_TIMEOUT_S)
    assert "PASSED" in done.stdout and "FAILED" not in done.stdout, done.stdout


def test_the_wheel_holds_the_migrations_and_no_tests(dists: Dists) -> None:
    names = zipfile.ZipFile(dists.wheel).namelist()
    assert "runhistory/store/sql/alembic.ini" in names
    migrations = {
        name for name in names
        if name.startswith("runhistory/store/sql/migrations/versions/") and name.endswith(".py")
    }
    in_checkout = {
        path.relative_to(REPO).as_posix() for path in (REPO / "runhistory/store/sql/migrations/versions").glob("*.py")
    }
    assert in_checkout and migrations == in_checkout
    assert not [name for name in names if name.startswith("tests/") or "/tests/" in name]


def test_the_wheel_holds_the_ui_and_its_chart_library(dists: Dists) -> None:
    """The UI works offline: its templates, scripts and the chart library npm fetched at build time."""
    wheel = zipfile.ZipFile(dists.wheel)
    names = set(wheel.namelist())
    bundle = "runhistory/ui/static/vendor/echarts.min.js"
    assert bundle in names and "runhistory/ui/static/vendor/echarts.LICENSE" in names
    assert wheel.getinfo(bundle).file_size > 500_000  # the whole bundle, not a stub
    assert b"echarts" in wheel.read(bundle)[:4096].lower()
    ui = REPO / "runhistory" / "ui"
    served = {
        path.relative_to(REPO).as_posix()
        for pattern in ("templates/**/*.html", "static/*.js", "static/*.css")
        for path in ui.glob(pattern)
    }
    assert any("/templates/" in name for name in served), "the checkout has no UI templates"
    assert served <= names, sorted(served - names)


def test_the_sdist_carries_the_asset_build(dists: Dists) -> None:
    """The sdist builds a wheel with the chart library: the lockfile, the script and the hook."""
    with tarfile.open(dists.sdist) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"setup.py", "scripts/ui_assets.py", "frontend/package.json", "frontend/package-lock.json"} <= names
    assert not [name for name in names if name.startswith("frontend/node_modules")]


# --- a fresh venv without extras ---

SCENARIO_2 = """
    import json, os
    from runhistory import Experiment, Workspace
    from runhistory.tensorboard.export import export_to_tensorboard
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util import tensor_util

    ws = Workspace.from_config()  # none here: the embedded default in ./.runhistory
    root = Experiment(ws, "export-to-tensorboard").start_logging()
    for alpha in (0.1, 0.2, 0.3):
        with root.child_run("alpha" + str(alpha)) as child:
            child.log("alpha", alpha)
            child.log("mse", 3000 + alpha)
        root.log("alpha", alpha)
        root.log("mse", 3000 + alpha)
    export_to_tensorboard(root, "exported")
    root.complete()

    values = {}  # tag -> every value, over all runs' event files
    for folder, _, files in os.walk("exported"):
        for name in files:
            if "tfevents" not in name:
                continue
            plugins = {}  # tag -> its plugin, which only a tag's first value in a file names
            for event in EventFileLoader(os.path.join(folder, name)).Load():
                for value in event.summary.value:
                    plugins.setdefault(value.tag, value.metadata.plugin_data.plugin_name)
                    kind = value.WhichOneof("value")
                    if kind == "simple_value":
                        number = value.simple_value
                    elif kind == "tensor" and plugins[value.tag] == "scalars":
                        number = tensor_util.make_ndarray(value.tensor).item()
                    else:
                        continue  # not a scalar (the HParams summaries)
                    values.setdefault(value.tag, []).append(round(number, 6))
    print(json.dumps({"values": values, "embedded": os.path.isdir(".runhistory")}))
"""


def test_scenario_2_runs_on_the_embedded_default(fresh: Venv, tmp_path: Path) -> None:
    result = _last_json(_ok(_python(fresh, SCENARIO_2, tmp_path)))
    assert result["embedded"]
    values = result["values"]
    # each child's value once, and the root's series; TensorBoard keeps scalars as float32
    assert sorted(values["alpha"]) == pytest.approx(sorted([0.1, 0.2, 0.3] * 2), rel=1e-6)
    assert sorted(values["mse"]) == pytest.approx(sorted([3000.1, 3000.2, 3000.3] * 2), rel=1e-6)


LOG_TO_SERVER = """
    import sys
    from runhistory import Experiment, Workspace
    ws = Workspace(tracking_uri=sys.argv[1])
    run = Experiment(ws, "over-http").start_logging(display_name="from-a-fresh-venv")
    for step in range(5):
        run.log("loss", 1.0 / (step + 1))
    run.log("name", "fresh")
    run.complete()
    print(run.id)
"""

READ_FROM_SERVER = """
    import json, sys
    from runhistory import Experiment, Workspace
    ws = Workspace(tracking_uri=sys.argv[1])
    (run,) = Experiment(ws, "over-http").get_runs()
    print(json.dumps({"id": run.id, "status": run.get_status(), "metrics": run.get_metrics()}))
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A ``runhistory server`` of the dev venv (which has the [server] extra) on a free loopback port."""
    port = free_port()
    folder = tmp_path / "server"
    folder.mkdir()
    log = open(folder / "server.log", "wb")
    process = subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "runhistory"), "server", "--workspace", f"sqlite:///{folder / 'server.db'}",
         "--artifacts", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port)],
        env=python_env(RUNHISTORY_CONFIG_DIR=str(folder / "home")),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _answers(f"{url}/api/v1/health"):
            assert process.poll() is None, f"the server exited {process.returncode}:\n{_read(folder / 'server.log')}"
            assert time.monotonic() < deadline, f"the server did not answer:\n{_read(folder / 'server.log')}"
            time.sleep(0.1)
        yield url
    finally:
        stop_process(process)
        log.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _read(path: Path) -> str:
    return path.read_text(errors="replace")


def test_the_sdk_logs_to_a_server(fresh: Venv, server: str, tmp_path: Path) -> None:
    run_id = _ok(_python(fresh, LOG_TO_SERVER, tmp_path, server)).strip().splitlines()[-1]
    reader = tmp_path / "reader"
    reader.mkdir()
    result = _last_json(_ok(_python(fresh, READ_FROM_SERVER, reader, server)))
    assert result["id"] == run_id and result["status"] == "Completed"
    assert result["metrics"]["loss"] == pytest.approx([1.0, 1 / 2, 1 / 3, 1 / 4, 1 / 5])
    assert result["metrics"]["name"] == "fresh"


def test_the_server_without_its_extra_names_the_pip_install(fresh: Venv, tmp_path: Path) -> None:
    done = _in_venv([str(fresh.runhistory), "server", "--workspace", str(tmp_path / "store")], tmp_path)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode != 0
    assert len(lines) == 1 and "pip install 'runhistory[server]'" in lines[0], lines


MISSING_EXTRA = """
    import sys
    from runhistory.core.errors import MissingExtraError
    try:
        if sys.argv[1] == "s3":
            from runhistory.artifacts import open_artifact_store
            open_artifact_store("s3://bucket/prefix")
        else:
            from runhistory import Workspace
            Workspace(tracking_uri="postgresql://runhistory@127.0.0.1:1/runhistory", artifact_uri="files")
    except MissingExtraError as exc:
        print(str(exc).splitlines()[0])
    else:
        print("no error")
"""


@pytest.mark.parametrize("extra", ["s3", "postgres"])
def test_a_missing_extra_names_the_pip_install(fresh: Venv, tmp_path: Path, extra: str) -> None:
    done = _python(fresh, MISSING_EXTRA, tmp_path, extra)
    output = _ok(done).strip().splitlines()
    assert output and f"pip install 'runhistory[{extra}]'" in output[-1], (done.stdout, done.stderr)


def test_the_all_extra_installs(dists: Dists, pip_cache: Path, tmp_path: Path) -> None:
    """A venv with every extra (``runhistory[all]``): it installs, each extra's packages import, and how big it is."""
    venv = _make_venv(tmp_path / "all", f"{dists.wheel}[all]", pip_cache)
    _ok(_python(venv, "import fastapi, uvicorn, psycopg, s3fs, runhistory.server", tmp_path))
    print(f"\na venv with runhistory[all] holds {_distribution_count(venv)} distributions")

"""The build hook: the wheel carries the web UI's chart library, fetched from npm at build time.

Everything else about the package is in pyproject.toml. Before build_py copies the package, this
runs scripts/ui_assets.py (``npm ci`` of frontend/'s lockfile, then a copy into
runhistory/ui/static/vendor/), so that the wheel holds what the UI serves and works offline.
An editable install skips it: the Makefile runs the script after ``pip install -e``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithAssets(build_py):
    """build_py that first fetches the UI's browser assets (the vendored chart library)."""

    def run(self) -> None:
        if not getattr(self, "editable_mode", False):
            script = HERE / "scripts" / "ui_assets.py"
            done = subprocess.run([sys.executable, str(script)], cwd=HERE)
            if done.returncode != 0:
                raise SystemExit("the UI's assets could not be fetched (scripts/ui_assets.py said why above)")
        super().run()


setup(cmdclass={"build_py": BuildPyWithAssets})

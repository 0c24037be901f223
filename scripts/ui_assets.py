#!/usr/bin/env python3
"""The web UI's third-party browser assets, from npm at install time (never committed).

``npm ci --prefix frontend --ignore-scripts`` installs what frontend/package-lock.json pins (with
its integrity hashes), then the bundle and its licence are copied into
runhistory/ui/static/vendor/, which the wheel carries (setup.py runs this before build_py) and
the UI serves as /ui/static/vendor/echarts.min.js. Standard library only: setup.py runs it in
the isolated build environment.

    python scripts/ui_assets.py [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FRONTEND = REPO / "frontend"
VENDOR = REPO / "runhistory" / "ui" / "static" / "vendor"
# what each vendored file is copied from, under frontend/node_modules
ASSETS = {
    "echarts.min.js": Path("echarts/dist/echarts.min.js"),
    "echarts.LICENSE": Path("echarts/LICENSE"),
    "echarts.NOTICE": Path("echarts/NOTICE"),
}
STAMP = VENDOR / ".lock-sha256"  # the lockfile the vendored files came from
NPM_TIMEOUT_S = 600


class AssetError(Exception):
    """The assets could not be fetched; the message is one sentence for the user."""


def lock_digest() -> str:
    """The SHA-256 of frontend/package-lock.json (what the vendored files must match)."""
    lock = FRONTEND / "package-lock.json"
    if not lock.is_file():
        raise AssetError(f"ui_assets: {lock} is missing; it pins the UI's chart library.")
    return hashlib.sha256(lock.read_bytes()).hexdigest()


def up_to_date() -> bool:
    """Whether every vendored file exists and came from the current lockfile."""
    if not all((VENDOR / name).is_file() for name in ASSETS):
        return False
    return STAMP.is_file() and STAMP.read_text().strip() == lock_digest()


def npm_ci() -> None:
    """Install frontend/'s locked packages (no install scripts run)."""
    npm = shutil.which("npm")
    if npm is None:
        raise AssetError(
            "ui_assets: npm is not on PATH; install Node.js with npm (Debian: apt-get install npm) "
            "to fetch the UI's chart library (echarts) from the npm registry."
        )
    command = [npm, "ci", "--prefix", str(FRONTEND), "--ignore-scripts", "--no-audit", "--no-fund"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=NPM_TIMEOUT_S)
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise AssetError(f"ui_assets: `npm ci --prefix frontend` exited {done.returncode}: {last}")


def copy_assets() -> None:
    """Copy the bundle and its licence from frontend/node_modules into the package."""
    VENDOR.mkdir(parents=True, exist_ok=True)
    for name, source in ASSETS.items():
        path = FRONTEND / "node_modules" / source
        if not path.is_file():
            raise AssetError(f"ui_assets: npm ci did not produce {path}.")
        shutil.copyfile(path, VENDOR / name)
    STAMP.write_text(lock_digest() + "\n")


def ensure_assets(force: bool = False) -> Path:
    """Fetch and copy the assets unless they are already there for this lockfile; the bundle's path."""
    if force or not up_to_date():
        npm_ci()
        copy_assets()
    return VENDOR / "echarts.min.js"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="fetch again even when up to date")
    args = parser.parse_args(argv)
    try:
        bundle = ensure_assets(force=args.force)
    except (AssetError, OSError, subprocess.TimeoutExpired) as exc:
        print(str(exc).splitlines()[0], file=sys.stderr)
        return 1
    print(f"ui_assets: {bundle.relative_to(REPO)} ({bundle.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The README tells the truth: its notebook example runs as written, and it names every setting."""

from __future__ import annotations

import json
import re
from pathlib import Path

from runhistory.core import settings
from tests.helpers import run_python

README = Path(__file__).resolve().parents[1] / "README.md"


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _python_blocks(section: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_readme_names_every_public_environment_variable() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [setting.name for setting in settings.SETTINGS if f"`{setting.name}`" not in text]
    assert not missing, f"README.md does not name {missing}"


def test_the_notebook_example_runs_and_tensorboard_shows_its_runs(tmp_path: Path) -> None:
    cells = _python_blocks(_section("In a notebook"))
    assert len(cells) == 2 and "tb.start()" in cells[0] and "tb.stop()" in cells[1]
    # The only change: a free port instead of 6006 (tests run side by side), and the URL kept.
    first = cells[0].replace("Tensorboard([root])", "Tensorboard([root], port=0)").replace("tb.start()", "url = tb.start()")
    check = """
import json, time, urllib.request
deadline = time.monotonic() + 60
while True:
    runs = json.load(urllib.request.urlopen(url + "data/runs"))
    if sum(name.startswith("alpha") or "/alpha" in name for name in runs) >= 3 or time.monotonic() > deadline:
        break
    time.sleep(0.2)
"""
    last = "\nprint(json.dumps({'runs': runs, 'status': root.get_status(), 'children': len(list(root.get_children()))}))\n"
    result = run_python(first + check + cells[1] + last, timeout=180, RUNHISTORY_TRACKING_URI=str(tmp_path / "ws"))
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["status"] == "Completed" and seen["children"] == 3
    assert sum("alpha" in name for name in seen["runs"]) >= 3, seen["runs"]

"""The house rules that a linter of the layers does not see (`make test` runs import-linter first)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import runhistory

PACKAGE = Path(runhistory.__file__).resolve().parent

# What one object's owner keeps to itself: other modules use the public accessors
# (Workspace.store and .artifacts, Run.record, ComputeTarget.record, from_record, the openers).
PRIVATE_STATE = {"_backends", "_record", "_engine", "_open_store", "_from_record"}


_READS_ENVIRONMENT = re.compile(r"environ\s*(\.get|\[)|getenv\(")


def _modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts)


def _reaches_into_others(tree: ast.AST) -> list[tuple[int, str]]:
    """``x._name`` with a private name of another object (not ``self``/``cls``)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in PRIVATE_STATE:
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id in {"self", "cls"}):
                found.append((node.lineno, ast.unparse(node)))
    return found


def _imports_of_private_names(tree: ast.AST) -> list[tuple[int, str]]:
    """``from runhistory.x import _name``: a private name imported from another module."""
    return [
        (node.lineno, f"from {node.module} import {alias.name}")
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("runhistory")
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]


def _offences(find) -> list[str]:
    """``path:line: text`` of what ``find(tree)`` reports in every module of the package."""
    return [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {text}"
        for path in _modules()
        for line, text in find(ast.parse(path.read_text(encoding="utf-8")))
    ]


def test_no_module_reads_another_objects_private_state() -> None:
    offences = _offences(_reaches_into_others)
    assert not offences, "private state read from outside its owner:\n" + "\n".join(offences)


def test_no_module_imports_a_private_name() -> None:
    offences = _offences(_imports_of_private_names)
    assert not offences, "private names imported across modules:\n" + "\n".join(offences)


def test_only_the_settings_module_reads_runhistory_variables() -> None:
    offences = []
    for path in _modules():
        if path.name == "settings.py" and path.parent.name == "core":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "RUNHISTORY_" in line and _READS_ENVIRONMENT.search(line):
                offences.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}")
    assert not offences, "environment read outside core/settings.py:\n" + "\n".join(offences)

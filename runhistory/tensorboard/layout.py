"""Which runs go where: resolving what the user named, and one readable folder per run.

Each run becomes one TensorBoard run (a folder) named by its display name and number
(``alpha0.1-3``), or by its experiment and number when it has no display name of its own
(``export-to-tensorboard-1``). Children are nested in their parent's folder, and each run is
exported once: a run given together with one of its ancestors goes under that ancestor only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from runhistory.core.errors import TensorboardError

if TYPE_CHECKING:
    from runhistory.experiment import Experiment
    from runhistory.run import Run
    from runhistory.workspace import Workspace

_UNSAFE = re.compile(r"[^A-Za-z0-9._=+,@()\[\]-]+")


def resolve_runs(run_data: "Run | Experiment | Iterable[Run | str] | str", workspace: "Workspace | None" = None) -> list["Run"]:
    """The runs named by a Run, an Experiment (its top-level runs), a list, a run id or ``EXPERIMENT:NUMBER``.

    Run ids are looked up in ``workspace``, by default the configured one; reading never
    creates a workspace (WorkspaceNotFoundError says where it looked).
    """
    from runhistory.experiment import Experiment
    from runhistory.run import Run

    if isinstance(run_data, Run):
        return [run_data]
    if isinstance(run_data, Experiment):
        return list(run_data.get_runs())
    if isinstance(run_data, str):
        from runhistory.workspace import Workspace

        return [(workspace or Workspace.from_config(create=False)).get_run(run_data)]
    if isinstance(run_data, Iterable):
        return [run for item in run_data for run in resolve_runs(item, workspace)]
    raise TensorboardError(
        f"Cannot export {type(run_data).__name__}: give a Run, an Experiment, a list of runs, a run id or EXPERIMENT:NUMBER."
    )


def folder_name(run: "Run") -> str:
    """A readable folder name for a run: display name (or experiment) and number."""
    label = run.experiment.name if run.display_name == run.id else run.display_name
    label = _UNSAFE.sub("_", label).strip("._") or "run"
    return f"{label}-{run.number}"


@dataclass
class RunNode:
    """A run, the folder (relative to the log root) it is exported to, and whether it is one of a sweep.

    Children of a run are a sweep; so are top-level runs given together.
    """

    run: "Run"
    folder: str
    in_sweep: bool


def plan(runs: list["Run"], recursive: bool = True) -> list[RunNode]:
    """Every run to export, once, with its folder; with ``recursive``, descendants nested under
    their parents (a run given with one of its ancestors is exported under the ancestor only)."""
    runs = list({run.id: run for run in runs}.values())  # each id once, where it came first
    if recursive:
        runs = topmost(runs)
    taken: set[str] = set()
    nodes = _nodes(runs, "", in_sweep=len(runs) > 1, taken=taken)
    pending = list(nodes) if recursive else []
    while pending:
        children = new_children(pending.pop(0), known=set(), taken=taken)
        nodes.extend(children)
        pending.extend(children)
    return nodes


def single_top(nodes: list[RunNode]) -> RunNode | None:
    """The one top-level node of a plan (the others are its descendants), or None when the plan
    has several (or none): what decides whether a sweep's HParams experiment describes all."""
    tops = [node for node in nodes if "/" not in node.folder]  # folder names never hold a "/"
    return tops[0] if len(tops) == 1 else None


def topmost(runs: list["Run"]) -> list["Run"]:
    """The runs none of whose ancestors is among ``runs`` (the others come with their ancestor)."""
    given = {run.id for run in runs}
    return [run for run in runs if not _has_ancestor_in(run, given)]


def _has_ancestor_in(run: "Run", ids: set[str]) -> bool:
    seen = {run.id}
    parent = run.parent
    while parent is not None and parent.id not in seen:  # ``seen`` guards against a cycle
        if parent.id in ids:
            return True
        seen.add(parent.id)
        parent = parent.parent
    return False


def new_children(parent: RunNode, known: set[str], taken: set[str]) -> list[RunNode]:
    """Nodes for the parent's children whose ids are not in ``known`` (following finds new ones)."""
    fresh = [child for child in parent.run.get_children() if child.id not in known]
    return _nodes(fresh, parent.folder + "/", in_sweep=True, taken=taken)


def _nodes(runs: list["Run"], parent_folder: str, in_sweep: bool, taken: set[str]) -> list[RunNode]:
    nodes = []
    for run in runs:
        folder = parent_folder + folder_name(run)
        if folder in taken:
            folder = f"{folder}-{run.id[-8:]}"
        taken.add(folder)
        nodes.append(RunNode(run, folder, in_sweep))
    return nodes

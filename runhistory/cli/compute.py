"""``runhistory compute ...``: register compute targets (local, Ray), list them, show one's status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from runhistory.cli.common import make_console, new_table, workspace_option
from runhistory.cli.format import format_number
from runhistory.cli.output import emit, output_option
from runhistory.compute import ComputeTarget, ComputeTargetStatus, LocalCompute, RayCompute
from runhistory.compute.base import ProvisioningConfiguration
from runhistory.core.errors import NotFoundError
from runhistory.core.uris import redact_uri
from runhistory.workspace import Workspace

# The fields of a target in ``compute list``'s JSON and CSV (JSON adds ``config``, every setting).
TARGET_COLUMNS = (
    "name",
    "kind",
    "max_concurrent_runs",
    "address",
    "working_directory",
    "running_runs",
    "queued_runs",
    "created_time",
)


@click.group("compute")
def compute_group() -> None:
    """Compute targets, where submitted jobs run: register one, list them, show one's status.

    \b
    Examples:
      runhistory compute create-ray cpucluster --address http://head:8265
      runhistory compute list
      runhistory submit -t cpucluster -e mnist train.py
    """


# --- compute list ---


@compute_group.command("list", short_help="List the compute targets, with their jobs running and queued.")
@output_option
@workspace_option
def list_targets(workspace: Workspace, output: str) -> None:
    """List the compute targets: name, kind, jobs at once, where, jobs running and queued.

    The counts come from the run history alone: no cluster is asked (`compute status NAME`
    asks it). JSON gives every setting under "config".

    \b
    Examples:
      runhistory compute list
      runhistory compute list -o json | jq -r '.[].name'
    """
    records = [target_data(target, ComputeTarget.get_status(target)) for target in ComputeTarget.list(workspace)]
    emit(records, output, lambda: make_console().print(targets_table(records)), columns=TARGET_COLUMNS)


def target_data(target: ComputeTarget, status: ComputeTargetStatus) -> dict[str, Any]:
    """A target as a plain record (see :data:`TARGET_COLUMNS`), with its settings under ``config``.

    ``status`` gives the running and queued counts; ``list`` takes the base class's, which only
    counts runs in the store (a Ray target's own ``get_status`` asks its cluster)."""
    config = target.config
    return {
        "name": target.name,
        "kind": target.kind,
        "max_concurrent_runs": target.max_concurrent_runs,
        "address": config.get("address"),
        "working_directory": config.get("working_directory"),
        "running_runs": status.running_runs,
        "queued_runs": status.queued_runs,
        "created_time": target.record.created_time or None,
        "config": config,
    }


def targets_table(records: list[dict[str, Any]]) -> Table:
    """The table of ``compute list``."""
    table = new_table()
    table.add_column("name", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("at once", justify="right", no_wrap=True)
    table.add_column("where", overflow="fold")
    table.add_column("running", justify="right", no_wrap=True)
    table.add_column("queued", justify="right", no_wrap=True)
    for record in records:
        table.add_row(
            record["name"],
            record["kind"],
            _at_once(record["max_concurrent_runs"]),
            _where(record),
            str(record["running_runs"]),
            str(record["queued_runs"]),
        )
    return table


def _at_once(limit: int | None) -> str:
    return "any" if limit is None else str(limit)


def _where(record: dict[str, Any]) -> Text:
    """A ray target's address, a local target's working folder (dim when it is the default)."""
    if record["address"] is not None:
        return Text(record["address"])
    if record["working_directory"] is not None:
        return Text(record["working_directory"])
    return Text("this machine", style="dim")


# --- compute create-local / create-ray ---


@compute_group.command("create-local", short_help="Register a local target: jobs run on this machine.")
@click.argument("name")
@click.option(
    "--max-concurrent-runs",
    type=click.IntRange(min=1),
    metavar="N",
    default=None,
    help="Run at most N of its jobs at once; the others wait Queued (default: no limit).",
)
@click.option(
    "--working-directory",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    default=None,
    help="Where each job gets its working folder (default: <temp>/runhistory-jobs).",
)
@click.option("--keep-working-folders", is_flag=True, help="Keep a job's working folder after it ends.")
@output_option
@workspace_option(create=True)
def create_local(
    workspace: Workspace,
    name: str,
    max_concurrent_runs: int | None,
    working_directory: Path | None,
    keep_working_folders: bool,
    output: str,
) -> None:
    """Register the local target NAME (replacing one of that name): its jobs run on this machine.

    "local" always exists; registering it changes its settings.

    \b
    Examples:
      runhistory compute create-local cpu2 --max-concurrent-runs 2
      runhistory compute create-local local --working-directory /scratch/jobs
    """
    config = LocalCompute.provisioning_configuration(
        max_concurrent_runs=max_concurrent_runs,
        working_directory=None if working_directory is None else str(working_directory),
        keep_working_folders=keep_working_folders,
    )
    _register(workspace, name, config, output)


@compute_group.command("create-ray", short_help="Register a Ray target: jobs run on a Ray cluster.")
@click.argument("name")
@click.option(
    "--address",
    required=True,
    metavar="URL|auto",
    help="The Ray head's Jobs API, http://HEAD:8265, or auto ($RAY_ADDRESS, else the cluster on this machine).",
)
@click.option("--num-cpus", type=click.FloatRange(min=0), metavar="N", default=1, show_default=True, help="CPUs each job takes.")
@click.option("--num-gpus", type=click.FloatRange(min=0), metavar="N", default=0, show_default=True, help="GPUs each job takes.")
@click.option("--memory", type=click.IntRange(min=0), metavar="BYTES", default=None, help="Memory each job takes, in bytes.")
@click.option(
    "--resource",
    "resources",
    multiple=True,
    metavar="NAME=AMOUNT",
    help="A custom Ray resource each job takes (repeat for more).",
)
@click.option(
    "--max-concurrent-runs",
    type=click.IntRange(min=1),
    metavar="N",
    default=None,
    help="Run at most N of its jobs at once (default: as many as the cluster holds); the others wait Queued.",
)
@click.option(
    "--runtime-env",
    metavar="JSON|@FILE",
    default=None,
    help="Ray's runtime_env for the jobs (pip, conda, env_vars), as JSON or @ a JSON file.",
)
@click.option("--keep-working-folders", is_flag=True, help="Keep a job's working folder on its node after it ends.")
@output_option
@workspace_option(create=True)
def create_ray(
    workspace: Workspace,
    name: str,
    address: str,
    num_cpus: float,
    num_gpus: float,
    memory: int | None,
    resources: tuple[str, ...],
    max_concurrent_runs: int | None,
    runtime_env: str | None,
    keep_working_folders: bool,
    output: str,
) -> None:
    """Register the Ray target NAME (replacing one of that name): its jobs run on a Ray cluster.

    The head must answer at --address, and every node must reach the workspace (a
    runhistory server, or PostgreSQL and S3; an embedded one only on a one-machine cluster).

    \b
    Examples:
      runhistory compute create-ray cpucluster --address http://head:8265
      runhistory compute create-ray gpus --address auto --num-gpus 1 \\
          --runtime-env '{"pip": ["torch"]}'
    """
    config = RayCompute.provisioning_configuration(
        address=address,
        num_cpus=_whole_if_whole(num_cpus),
        num_gpus=_whole_if_whole(num_gpus),
        memory=memory,
        resources=parse_resources(resources),
        max_concurrent_runs=max_concurrent_runs,
        runtime_env=None if runtime_env is None else parse_runtime_env(runtime_env),
        keep_working_folders=keep_working_folders,
    )
    _register(workspace, name, config, output)


def _whole_if_whole(amount: float) -> float:
    """``1.0`` as ``1``: click's FloatRange makes every amount a float, the stored settings keep 1."""
    return int(amount) if float(amount).is_integer() else amount


def parse_resources(pairs: tuple[str, ...]) -> dict[str, float]:
    """``--resource NAME=AMOUNT`` options as a dict; a usage error for a malformed or repeated one."""
    found: dict[str, float] = {}
    for pair in pairs:
        resource, sep, amount = pair.partition("=")
        resource = resource.strip()
        try:
            value = float(amount) if sep and resource else None
        except ValueError:
            value = None
        if value is None:
            raise click.BadParameter(f"{pair!r} is not NAME=AMOUNT (say accelerator=1).", param_hint="--resource")
        if resource in found:
            raise click.BadParameter(f"{resource!r} is given twice.", param_hint="--resource")
        found[resource] = _whole_if_whole(value)
    return found


def parse_runtime_env(value: str) -> dict[str, Any]:
    """``--runtime-env``: a JSON object, or ``@FILE`` holding one; a usage error otherwise."""
    text, source = value, "the value"
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(f"cannot read {path}: {exc.strerror or exc}.", param_hint="--runtime-env") from None
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"{source} is not JSON ({exc}); give a JSON object or @FILE.", param_hint="--runtime-env") from None
    if not isinstance(parsed, dict):
        raise click.BadParameter(f"{source} is not a JSON object (Ray's runtime_env is one).", param_hint="--runtime-env")
    return parsed


def _register(workspace: Workspace, name: str, config: ProvisioningConfiguration, output: str) -> None:
    """Register the target (the config's check first: a Ray head that does not answer is refused)
    and print what was registered."""
    replaced = workspace.store.get_compute_target(name) is not None
    target = ComputeTarget.create(workspace, name, config)
    record = target_data(target, ComputeTarget.get_status(target))
    emit(record, output, lambda: click.echo(registered_message(target, replaced)), columns=TARGET_COLUMNS)


def registered_message(target: ComputeTarget, replaced: bool) -> str:
    """What ``create-*`` prints: the target, its settings, and how to submit to it."""
    config = target.config
    if isinstance(target, LocalCompute):
        where = f"local, working folders in {target.jobs_directory}"
    else:
        where = f"{target.kind} at {config.get('address')}; each job takes {_job_demand(config)}"
    if config.get("keep_working_folders"):
        where += "; working folders kept after each job"
    limit = target.max_concurrent_runs
    at_once = "no limit on jobs at once" if limit is None else f"at most {limit} jobs at once"
    verb = "Replaced" if replaced else "Registered"
    return (
        f"{verb} compute target {target.name!r} ({where}; {at_once}) in the workspace at "
        f"{redact_uri(target.workspace.tracking_uri)}. Submit to it with: runhistory submit -t {target.name} -e EXPERIMENT SCRIPT"
    )


def _job_demand(config: dict[str, Any]) -> str:
    parts = [f"{format_number(config.get('num_cpus', 1))} CPU", f"{format_number(config.get('num_gpus', 0))} GPU"]
    if config.get("memory"):
        parts.append(f"{config['memory']} bytes of memory")
    parts += [f"{format_number(amount)} {resource}" for resource, amount in (config.get("resources") or {}).items()]
    return ", ".join(parts)


# --- compute status ---


@compute_group.command("status", short_help="Show a target's jobs and, for Ray, its cluster's resources.")
@click.argument("name")
@output_option
@workspace_option
def target_status(workspace: Workspace, name: str, output: str) -> None:
    """Show a compute target's state: its jobs running and queued and, for a Ray target, the
    cluster's nodes, CPUs and GPUs (free / total).

    Asking a Ray target also admits the queued jobs that have room. A head that does not
    answer is an error naming its address.

    \b
    Examples:
      runhistory compute status cpucluster
      runhistory compute status cpucluster -o json | jq .cluster.cpus_free
    """
    status = get_target(workspace, name).get_status()
    data = status.serialize()
    emit(data, output, lambda: make_console().print(status_grid(status)), columns=list(data))


def get_target(workspace: Workspace, name: str) -> ComputeTarget:
    """The target called ``name``; NotFoundError naming the ones there are, and how to add one."""
    targets = {target.name: target for target in ComputeTarget.list(workspace)}
    if name not in targets:
        raise NotFoundError(
            f"No compute target {name!r} in the workspace at {redact_uri(workspace.tracking_uri)} "
            f"(it has: {', '.join(targets)}); register one with `runhistory compute create-local` or `create-ray`."
        )
    return targets[name]


def status_grid(status: ComputeTargetStatus) -> Table:
    """``compute status`` as aligned ``key  value`` lines."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    rows = [
        ("Target", status.name),
        ("Kind", status.kind),
        ("State", status.provisioning_state),
        ("At once", "no limit" if status.max_concurrent_runs is None else f"at most {status.max_concurrent_runs} jobs"),
        ("Running", str(status.running_runs)),
        ("Queued", str(status.queued_runs)),
    ]
    cluster = status.cluster
    if cluster is not None:
        rows += [
            ("Address", str(cluster.get("address"))),
            ("Nodes", str(cluster.get("nodes"))),
            ("CPUs", _free_of_total(cluster.get("cpus_free"), cluster.get("cpus_total"))),
            ("GPUs", _free_of_total(cluster.get("gpus_free"), cluster.get("gpus_total"))),
        ]
    for key, value in rows:
        grid.add_row(key, Text(value))
    return grid


def _free_of_total(free: float | None, total: float | None) -> str:
    total_text = format_number(total or 0)
    return f"{total_text} in all" if free is None else f"{format_number(free)} free of {total_text}"

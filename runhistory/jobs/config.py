"""What a job runs: ``ScriptRunConfig``, and ``Estimator`` which builds one from script parameters."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from runhistory.compute.base import LOCAL_TARGET_NAME, ComputeTarget
from runhistory.core.errors import JobConfigError
from runhistory.core.paths import refuse_non_folder
from runhistory.jobs.submit import submit_job

if TYPE_CHECKING:
    from runhistory.experiment import Experiment
    from runhistory.run import Run

LOCAL_TARGET = LOCAL_TARGET_NAME  # the compute target a config names unless told otherwise

# Estimator keywords of azureml that choose a cloud environment; a job here runs in the
# submitting Python environment, so they are accepted (the reference code ports) and ignored.
_AZURE_ENVIRONMENT_KEYWORDS = frozenset(
    {
        "framework_version",
        "use_gpu",
        "pip_packages",
        "conda_packages",
        "pip_requirements_file",
        "conda_dependencies_file",
        "vm_size",
        "vm_priority",
        "node_count",
        "process_count_per_node",
        "distributed_training",
        "use_docker",
        "custom_docker_image",
        "image_registry_details",
        "user_managed",
        "shm_size",
        "environment_definition",
    }
)


class ScriptRunConfig:
    """A Python script of a source folder, its arguments, and the compute target to run it on.

    The parameters are azureml's, in azureml's order, so that positional calls port:
    ``source_directory`` is snapshotted into the run's files when submitted (honouring
    ``.gitignore`` and ``.runhistoryignore``); ``script`` is a path inside it. ``arguments``
    are strings or numbers. ``environment`` is a mapping of extra environment variables
    for the script. ``max_run_duration_seconds`` fails a job that runs longer. azureml's
    ``run_config``, ``distributed_job_config``, ``resume_from``, ``command`` and
    ``docker_runtime_config`` have no counterpart here and must stay None;
    ``_telemetry_values`` is ignored.
    """

    def __init__(
        self,
        source_directory: str | os.PathLike,
        script: str | os.PathLike | None = None,
        arguments: Sequence[Any] | None = None,
        run_config: Any = None,
        _telemetry_values: Any = None,
        compute_target: "str | ComputeTarget" = LOCAL_TARGET,
        environment: Mapping[str, str] | None = None,
        distributed_job_config: Any = None,
        resume_from: Any = None,
        max_run_duration_seconds: float | None = None,
        command: Any = None,
        docker_runtime_config: Any = None,
    ) -> None:
        _refuse_unsupported(
            run_config=run_config,
            distributed_job_config=distributed_job_config,
            resume_from=resume_from,
            command=command,
            docker_runtime_config=docker_runtime_config,
        )
        if script is None:
            raise JobConfigError(f"ScriptRunConfig needs script: the path of the Python file of {source_directory} to run.")
        self.source_directory = _source_directory(source_directory)
        self.script = _script_in(self.source_directory, script)
        self.arguments = _arguments(arguments, self.script)
        self.compute_target = _compute_target(compute_target)
        self.environment = _environment(environment)
        self.max_run_duration_seconds = _duration(max_run_duration_seconds)

    @property
    def target_name(self) -> str:
        """The name of the compute target."""
        target = self.compute_target
        return target if isinstance(target, str) else target.name

    def submit_to(self, experiment: "Experiment", tags: Mapping[str, Any] | None = None) -> "Run":
        """Submit the script as a new job run of ``experiment`` (what ``experiment.submit(config)``
        calls); returns the run, Queued or already further."""
        return submit_job(experiment, self, tags)

    def validate(self) -> None:
        """Check again that the source folder and the script exist (they may have moved since)."""
        _source_directory(self.source_directory)
        _script_in(self.source_directory, self.script)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(source_directory={str(self.source_directory)!r}, script={self.script!r}, "
            f"arguments={self.arguments!r}, compute_target={self.target_name!r})"
        )


class Estimator(ScriptRunConfig):
    """azureml's Estimator: an entry script with ``script_params`` ``{"--name": value}``.

    A parameter whose value is None is passed as a bare flag. Keywords of azureml that
    choose a cloud environment (``framework_version``, ``use_gpu``, ``pip_packages``, ...)
    are accepted with a warning and ignored: the job runs in this Python environment.
    """

    def __init__(
        self,
        source_directory: str | os.PathLike,
        compute_target: "str | ComputeTarget | None" = None,
        entry_script: str | os.PathLike | None = None,
        script_params: Mapping[str, Any] | None = None,
        *,
        environment_variables: Mapping[str, str] | None = None,
        max_run_duration_seconds: float | None = None,
        **azure_environment: Any,
    ) -> None:
        _warn_ignored(azure_environment)
        if entry_script is None:
            raise JobConfigError(f"Estimator needs entry_script: the script of {source_directory} to run.")
        super().__init__(
            source_directory,
            entry_script,
            arguments=_script_params_to_arguments(script_params, entry_script),
            compute_target=LOCAL_TARGET if compute_target is None else compute_target,
            environment=environment_variables,
            max_run_duration_seconds=max_run_duration_seconds,
        )


def _refuse_unsupported(**options: Any) -> None:
    given = sorted(name for name, value in options.items() if value is not None)
    if given:
        raise JobConfigError(
            f"ScriptRunConfig does not support azureml's {', '.join(given)}: a runhistory job runs script "
            f"with arguments on compute_target, in this Python environment; leave them out."
        )


def _source_directory(source_directory: str | os.PathLike) -> Path:
    if not isinstance(source_directory, (str, os.PathLike)):
        raise JobConfigError(f"source_directory must be a folder path, got {type(source_directory).__name__}.")
    folder = Path(source_directory).expanduser().resolve()
    if not folder.exists():
        raise JobConfigError(f"The source directory {folder} does not exist.")
    refuse_non_folder(folder, "The source directory", JobConfigError)
    return folder


def _script_in(folder: Path, script: str | os.PathLike) -> str:
    """The script as a forward-slash path relative to ``folder``; it must be a file inside it."""
    if not isinstance(script, (str, os.PathLike)) or not os.fspath(script):
        raise JobConfigError(f"script must be the path of a Python file in {folder}, got {script!r}.")
    path = Path(script).expanduser()
    full = (path if path.is_absolute() else folder / path).resolve()
    if not full.is_relative_to(folder):
        raise JobConfigError(f"The script {script} is not inside the source directory {folder}.")
    if not full.is_file():
        raise JobConfigError(f"The script {os.fspath(script)!r} does not exist in the source directory {folder}.")
    return full.relative_to(folder).as_posix()


def _arguments(arguments: Sequence[Any] | None, script: str) -> list[str]:
    if arguments is None:
        return []
    if isinstance(arguments, (str, bytes)) or not isinstance(arguments, Sequence):
        raise JobConfigError(
            f"The arguments of {script} must be a list of strings or numbers, got {type(arguments).__name__}."
        )
    return [_argument(value, index, script) for index, value in enumerate(arguments)]


def _argument(value: Any, index: int, script: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float, os.PathLike)):
        raise JobConfigError(
            f"Argument {index} of {script} is {type(value).__name__} {value!r}; arguments must be strings or numbers."
        )
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


def _script_params_to_arguments(params: Mapping[str, Any] | None, script: Any) -> list[Any]:
    if params is None:
        return []
    if not isinstance(params, Mapping):
        raise JobConfigError(
            f"The script_params of {script} must be a dict {{'--name': value}}, got {type(params).__name__}."
        )
    arguments: list[Any] = []
    for name, value in params.items():
        if not isinstance(name, str):
            raise JobConfigError(f"The script_params of {script} have a key {name!r} that is not a string.")
        arguments.append(name)
        if value is not None:
            arguments.append(value)
    return arguments


def _compute_target(target: Any) -> "str | ComputeTarget":
    if isinstance(target, str) and target:
        return target
    if isinstance(target, ComputeTarget):
        return target
    raise JobConfigError(f"compute_target must be a compute target or its name, got {type(target).__name__} {target!r}.")


def _environment(environment: Mapping[str, str] | None) -> dict[str, str]:
    if environment is None:
        return {}
    if not isinstance(environment, Mapping):
        raise JobConfigError(
            f"environment must be a dict of environment variables, got {type(environment).__name__}."
        )
    for key, value in environment.items():
        if not isinstance(key, str) or not isinstance(value, str) or not key or "=" in key:
            raise JobConfigError(f"Environment variable {key!r}={value!r}: names and values must be strings.")
    return dict(environment)


def _duration(seconds: float | None) -> float | None:
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise JobConfigError(f"max_run_duration_seconds must be a positive number of seconds, got {seconds!r}.")
    return float(seconds)


def _warn_ignored(keywords: Mapping[str, Any]) -> None:
    unknown = sorted(set(keywords) - _AZURE_ENVIRONMENT_KEYWORDS)
    if unknown:
        raise TypeError(f"Estimator() got unexpected keyword arguments: {', '.join(unknown)}.")
    if keywords:
        warnings.warn(
            f"Estimator ignores {', '.join(sorted(keywords))}: a runhistory job runs in the submitting "
            f"Python environment.",
            UserWarning,
            stacklevel=3,
        )

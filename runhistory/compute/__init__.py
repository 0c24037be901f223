"""Compute targets: where submitted jobs run (``local`` now; a Ray cluster next)."""

from runhistory.compute.base import ComputeTarget, ComputeTargetStatus, ProvisioningConfiguration
from runhistory.compute.local import LocalCompute, LocalComputeConfiguration

__all__ = [
    "ComputeTarget",
    "ComputeTargetStatus",
    "LocalCompute",
    "LocalComputeConfiguration",
    "ProvisioningConfiguration",
]

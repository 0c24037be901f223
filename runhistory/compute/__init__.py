"""Compute targets: where submitted jobs run: this machine (``local``) or a Ray cluster (``ray``)."""

from runhistory.compute.base import ComputeTarget, ComputeTargetStatus, ProvisioningConfiguration
from runhistory.compute.local import LocalCompute, LocalComputeConfiguration
from runhistory.compute.ray import RayCompute, RayComputeConfiguration

__all__ = [
    "ComputeTarget",
    "ComputeTargetStatus",
    "LocalCompute",
    "LocalComputeConfiguration",
    "ProvisioningConfiguration",
    "RayCompute",
    "RayComputeConfiguration",
]

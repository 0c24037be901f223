"""A real Ray cluster on this machine for tests: a head, and worker nodes added and killed at will.

The launcher lives in ``benchmarks/_common.py`` (one copy, shared with ``benchmarks/ray_jobs.py``,
which may not import tests); this module is the name the tests use. Every node is
``ray start --block`` in a session of its own, on ports of its own and a short temporary folder,
stopped by its own processes (never ``ray stop``, which ends every Ray process on the machine).
"""

from __future__ import annotations

from benchmarks._common import RAY_NODE_ENV, RayCluster, RayNode, start_ray_cluster

__all__ = ["RAY_NODE_ENV", "RayCluster", "RayNode", "start_ray_cluster"]

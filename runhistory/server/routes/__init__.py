"""The routes of the runhistory server's API, one router per resource (all under ``API_PREFIX``)."""

from __future__ import annotations

from fastapi import APIRouter

from runhistory.server.routes import compute_targets, experiments, files, health, metrics, queries, runs

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    queries.router,
    experiments.router,
    runs.router,
    compute_targets.router,
    metrics.router,
    files.router,
)

"""The routes, headers and error bodies of the runhistory server's HTTP API, as client and server
both use them."""

from __future__ import annotations

API_PREFIX = "/api/v1"  # every route of the API lives under it
BATCH_ID_HEADER = "X-Runhistory-Batch-Id"  # a metric batch's id: a retried batch is never stored twice
AUTHORIZATION_HEADER = "Authorization"  # "Bearer <token>"
TOKEN_PREFIX = "rh_"  # every API token starts so
# An error answers {ERROR_CODE_FIELD: the stable code of its class (runhistory.core.errors),
# ERROR_DETAIL_FIELD: its one-sentence message}.
ERROR_CODE_FIELD = "error"
ERROR_DETAIL_FIELD = "detail"
# The most runs one read of the series of many runs (POST /metrics/of-runs) names; a client asks in pages.
MAX_RUNS_PER_METRICS_READ = 500

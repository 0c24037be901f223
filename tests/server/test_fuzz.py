"""Schemathesis against the server's OpenAPI schema: whatever a client sends, never a 500.

Schemathesis's pytest plugin does not load under this pytest, so the test drives its
Python API: one Hypothesis run per API operation, generated from the live schema.
"""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.server.support import ServerProcess


def test_no_request_makes_the_server_fail(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "fuzz").start()
    failures: list[str] = []
    try:
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 20
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
            def check(case) -> None:
                response = case.call(timeout=30)
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}")

            check()
    finally:
        server.stop()
    assert not failures, "\n".join(failures[:20]) + "\n" + server.log()[-3000:]

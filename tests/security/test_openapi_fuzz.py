"""Schemathesis against ``/openapi.json``: generated requests, valid and not, to every operation. None may get a
5xx, and every answer must match the schema the API publishes for it."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.conftest import CoveServer

EXAMPLES_PER_OPERATION = 40


def test_no_request_gets_a_server_error_or_breaks_the_schema(own_server: CoveServer) -> None:
    schema = schemathesis.openapi.from_url(own_server.url + "/openapi.json")
    headers = {"authorization": f"Bearer {own_server.api_key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    statuses: list[int] = []

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
        def fuzz(case: Any) -> None:
            response = case.call_and_validate(
                base_url=own_server.url,
                headers=headers,
                checks=[not_a_server_error, response_schema_conformance],
                timeout=120,
            )
            statuses.append(response.status_code)

        fuzz()
    # Really run: every operation several times, valid requests among them.
    assert len(statuses) > 5 * len(operations)
    assert any(200 <= status < 300 for status in statuses) and any(400 <= status < 500 for status in statuses)

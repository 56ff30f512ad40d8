"""schemathesis against /openapi.json, over the real production server: a bounded run.

Every operation gets generated requests, valid and invalid, with a session's
CSRF token so that writes reach the views. Properties: never a 5xx, and every
response that the document describes matches its schema.
"""

from __future__ import annotations

from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.core.result import Ok

from tests.e2e.conftest import serve_production

EXAMPLES = 40  # per operation: six operations, about 240 requests in a few seconds


def test_the_api_keeps_to_its_openapi_document(sqlite_url: str) -> None:
    with serve_production(1, DATABASE_URL=sqlite_url) as server:
        session = requests.Session()
        token = session.get(server.base + "/api/csrf-token", timeout=10).json()["csrf_token"]
        cookies = {cookie.name: cookie.value for cookie in session.cookies}
        assert cookies, "the token is bound to a session cookie"
        schema = schemathesis.openapi.from_url(server.base + "/openapi.json")
        results = list(schema.get_all_operations())
        assert all(isinstance(result, Ok) for result in results), results
        operations = [result.ok() for result in results if isinstance(result, Ok)]
        assert {op.label for op in operations} == {
            "GET /api/csrf-token",
            "GET /api/things",
            "POST /api/things",
            "GET /api/things/{thing_id}",
            "PUT /api/things/{thing_id}",
            "DELETE /api/things/{thing_id}",
        }
        statuses: set[int] = set()
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Any) -> None:
                response = case.call(
                    base_url=server.base,
                    headers={"X-CSRF-Token": token},
                    cookies=cookies,
                    timeout=10,
                )
                statuses.add(response.status_code)
                case.validate_response(
                    response, checks=[not_a_server_error, response_schema_conformance]
                )

            check()
        log = server.stop()
    assert all(status < 500 for status in statuses), statuses
    assert {200, 201} <= statuses  # the valid requests got through, not only refusals
    assert "Traceback" not in log

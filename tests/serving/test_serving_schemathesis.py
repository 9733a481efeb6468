"""Schemathesis against the server's own OpenAPI schema: bounded (few examples per operation,
a request timeout and a total time budget, loopback only); no response may be a 5xx, and every
error must be ``{"error": "..."}``.

(Schemathesis' own pytest loader does not run under pytest 9, so its strategies are driven
with Hypothesis directly, as its docs describe for "non-Schemathesis tests".)
"""

from __future__ import annotations

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

EXAMPLES = 5  # per operation and pass
BUDGET_S = 150.0  # the whole run stops generating after this long
REAL = {"name": "shapes", "version": "1"}  # path parameters of a served model (deeper paths)


@pytest.fixture(scope="module")
def api_schema(server):
    assert server.url.startswith("http://127.0.0.1:")
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def operation_test(operation, mode: GenerationMode, fixed: dict | None, calls: dict[str, int], start: float):
    """A Hypothesis test that sends EXAMPLES generated requests to one operation."""
    label = f"{operation.method.upper()} {operation.path}"

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case) -> None:
        if time.monotonic() - start > BUDGET_S:
            return
        response = case.call(timeout=20)
        calls[label] = calls.get(label, 0) + 1
        case.validate_response(response, checks=[not_a_server_error])
        if response.status_code >= 400 and response.status_code != 405:
            assert isinstance(response.json().get("error"), str), (label, response.status_code, response.text)

    return check


@pytest.mark.parametrize("mode, real_names, min_operations", [
    (GenerationMode.POSITIVE, False, 13), (GenerationMode.NEGATIVE, False, 5),
    (GenerationMode.POSITIVE, True, 9), (GenerationMode.NEGATIVE, True, 5),
], ids=["positive", "negative", "positive-served-model", "negative-served-model"])
def test_no_server_errors(api_schema, mode: GenerationMode, real_names: bool, min_operations: int) -> None:
    """Every operation gets EXAMPLES generated requests (negative mode: those with something to break)."""
    start = time.monotonic()
    calls: dict[str, int] = {}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 13
    for operation in operations:
        params = {p.name for p in operation.path_parameters}
        fixed = {k: v for k, v in REAL.items() if k in params} if real_names else None
        if real_names and not fixed:
            continue
        try:
            operation_test(operation, mode, fixed, calls, start)()
        except Unsatisfiable:  # negative mode: nothing in this operation can be made invalid
            assert mode is GenerationMode.NEGATIVE, operation.path
    assert len(calls) >= min_operations, calls

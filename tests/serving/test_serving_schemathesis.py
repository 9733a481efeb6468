"""Schemathesis against the server's own OpenAPI schema: bounded by a number of generated
requests per operation (EXAMPLES) and a per-request timeout, loopback only -- never by a
wall-clock budget, which would leave the last operations untested. Every operation gets
its requests; no response may be a 5xx, and every error must be ``{"error": "..."}``.

(Schemathesis' own pytest loader does not run under pytest 9, so its strategies are driven
with Hypothesis directly, as its docs describe for "non-Schemathesis tests".)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

EXAMPLES = 5  # generated requests per operation and pass
REAL = {"name": "shapes", "version": "1"}  # path parameters of a served model (deeper paths)


@pytest.fixture(scope="module")
def api_schema(server):
    assert server.url.startswith("http://127.0.0.1:")
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def operation_test(operation, mode: GenerationMode, fixed: dict | None, calls: dict[str, int]):
    """A Hypothesis test that sends up to EXAMPLES generated requests to one operation."""
    label = f"{operation.method.upper()} {operation.path}"

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case) -> None:
        response = case.call(timeout=20)
        calls[label] = calls.get(label, 0) + 1
        case.validate_response(response, checks=[not_a_server_error])
        if response.status_code >= 400 and response.status_code != 405:
            assert isinstance(response.json().get("error"), str), (label, response.status_code, response.text)

    return label, check


@pytest.mark.parametrize("mode, real_names", [
    (GenerationMode.POSITIVE, False), (GenerationMode.NEGATIVE, False),
    (GenerationMode.POSITIVE, True), (GenerationMode.NEGATIVE, True),
], ids=["positive", "negative", "positive-served-model", "negative-served-model"])
def test_no_server_errors(api_schema, mode: GenerationMode, real_names: bool) -> None:
    """Every operation gets generated requests (negative mode: every one with something to
    break; with the served model's names: every one with path parameters)."""
    calls: dict[str, int] = {}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 13
    expected, unsatisfiable = set(), set()
    for operation in operations:
        params = {p.name for p in operation.path_parameters}
        fixed = {k: v for k, v in REAL.items() if k in params} if real_names else None
        if real_names and not fixed:
            continue
        label, check = operation_test(operation, mode, fixed, calls)
        expected.add(label)
        try:
            check()
        except Unsatisfiable:  # negative mode: nothing in this operation can be made invalid
            assert mode is GenerationMode.NEGATIVE, operation.path
            unsatisfiable.add(label)
    assert set(calls) == expected - unsatisfiable, sorted(expected - unsatisfiable - set(calls))
    if mode is GenerationMode.POSITIVE:
        assert not unsatisfiable and len(expected) >= (9 if real_names else 13)

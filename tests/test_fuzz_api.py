"""Every route of the real stack (`herald dev`: Temporal, workers, API, sandbox) fuzzed with
schemathesis from the API's own OpenAPI document: with a valid key, no answer is a 5xx, every
error has the documented shape, and every answer has a documented status and content type and
matches the schema the document gives that status (api/openapi_responses.py); without a key or
with a revoked one, every /v1 route is a 401."""

from __future__ import annotations

import os

import httpx
import pytest
import schemathesis
from schemathesis import GenerationMode
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)

from tests.e2e_stack import Stack

pytestmark = pytest.mark.e2e

# Checked on every answer to a valid key, schema-valid and schema-breaking input alike: the
# document declares each route's success schema, and Error for every 4XX and 5XX.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

# Enough to reach every branch of our validators in CI time; raise locally for a deeper run.
EXAMPLES = int(os.environ.get("HERALD_TEST_FUZZ_EXAMPLES", "15"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("HERALD_TEST_FUZZ_RANDOM"),
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="session")
def operations(stack: Stack) -> list:
    # Loaded from the running stack; schemathesis' lazy pytest fixture does not work with this
    # pytest (request.node._nodeid is gone), so hypothesis is driven directly per operation.
    schema = schemathesis.openapi.from_url(f"{stack.api}/openapi.json")
    ops = [result.ok() for result in schema.get_all_operations()]
    assert len(ops) >= 35
    return ops


@pytest.fixture(scope="session")
def revoked_key(stack: Stack) -> str:
    with stack.client() as c:
        key = c.post("/v1/keys", json={"label": "fuzz-revoked"}).json()["key"]
        assert c.delete(f"/v1/keys/{key['id']}").status_code == 200
    return key["secret"]


def _documented_error(response) -> None:  # noqa: ANN001
    if response.status_code < 400 or response.request.method == "HEAD":
        return  # a HEAD answer has the GET's headers and no body (RFC 9110 9.3.2)
    body = response.json()
    assert body.get("ok") is False and set(body) == {"ok", "code", "message", "details"}, body
    assert isinstance(body["code"], str) and isinstance(body["message"], str) and body["message"]


def test_no_route_answers_5xx_to_any_input(operations: list, stack: Stack) -> None:
    tried, succeeded = 0, set()
    # Positive cases follow the schema; negative ones break it on purpose (wrong types, bad ids).
    for op, mode in ((op, mode) for op in operations for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)):
        @FUZZ
        @given(case=op.as_strategy(generation_mode=mode))
        def fuzz(case) -> None:  # noqa: ANN001
            nonlocal tried
            tried += 1
            response = case.call(headers={"Authorization": f"Bearer {stack.key}"}, timeout=30)
            case.validate_response(response, checks=CHECKS)
            _documented_error(response)
            if response.status_code < 300:
                succeeded.add((case.method, case.path))

        try:
            fuzz()
        except Unsatisfiable:
            assert mode == GenerationMode.NEGATIVE  # nothing in this operation can be made invalid
    print(f"fuzzed {len(operations)} operations with {tried} requests; "
          f"{len(succeeded)} operations answered 2xx/3xx, checked against their success schemas")
    assert tried >= len(operations) * 3
    # Random ids mostly get 404s, but the lists and the creates answer successes, so the success
    # schemas really are checked (a route whose answer breaks its schema fails above).
    assert len(succeeded) >= 10, sorted(succeeded)


def test_every_v1_route_needs_a_valid_key(operations: list, stack: Stack, revoked_key: str) -> None:
    for op in operations:
        if not op.path.startswith("/v1/"):
            continue

        @settings(max_examples=2, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def fuzz(case) -> None:  # noqa: ANN001
            for headers in ({}, {"Authorization": f"Bearer {revoked_key}"}, {"X-API-Key": "hk_live_not-a-key"}):
                response = case.call(headers=headers, timeout=30)
                assert response.status_code == 401, (case.method, case.path, response.status_code, response.text)
                _documented_error(response)

        fuzz()


def test_the_stack_is_healthy_after_fuzzing(stack: Stack) -> None:
    assert httpx.get(f"{stack.api}/health", timeout=30).status_code == 200

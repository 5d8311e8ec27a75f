"""schemathesis over the service's own OpenAPI schema: every operation, generated cases, with
and without API keys. No 5xx, no answer outside the schema. Bounded here; `make fuzz` runs it in
full (FUZZ_EXAMPLES=300).

schemathesis's pytest plugin does not work with pytest 9.2 yet, so each operation's
strategy runs under plain hypothesis `@given`; the checks are schemathesis's own.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.serving.conftest import live_server

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
KEY, ADMIN = "fuzz-user-key", "fuzz-admin-key"
OVERFLOW = "the model's answer overflowed"  # pipeline.infer's refusal


def fuzz(url: str, keyed: bool) -> tuple[int, list[str]]:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations, failures = 0, []
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            headers = {}
            if case.path.startswith(("/admin", "/v2/repository")):
                headers = {"authorization": f"Bearer {ADMIN}"}
            elif keyed:  # a third each: the right key, a wrong one, none
                choice = (KEY, "wrong", None)[hash(repr(case.body)) % 3]
                headers = {"authorization": f"Bearer {choice}"} if choice else {}
            # Some rules no JSON schema can state: "a readable picture of one digit" (uploads),
            # "data holds as many values as its shape says" and the binary body's layout
            # (protocol infer). There a schema-valid request may rightly get 4xx, so those
            # operations skip positive acceptance; every other check still applies.
            semantic = case.path == "/predict/digits/image" or case.path.endswith("/infer")
            # Nor "the network's answer stays finite": points and curve take any float32, and
            # values near its limit overflow the network, refused as 422 naming the item
            # (test_bad_input). There any other refusal of schema-valid data still fails.
            finite = case.path in ("/predict/points", "/predict/curve")
            skip = [positive_data_acceptance] if semantic or finite else []
            response = case.call(headers=headers, timeout=30)
            case.validate_response(response, excluded_checks=skip, headers=headers)
            if finite and 400 <= response.status_code < 500:
                assert response.status_code in (401, 403, 404, 429) or (
                    response.status_code == 422 and OVERFLOW in response.text
                ), f"schema-valid request refused: {response.status_code} {response.text}"

        try:
            run()
        except Exception as e:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {str(e)[:1500]}")
    return operations, failures


@pytest.mark.parametrize("keyed", [False, True], ids=["open", "keyed"])
def test_no_server_error_and_answers_fit_the_schema(built_repo: Path, keyed: bool) -> None:
    env = {"SERVING_API_KEYS": KEY, "SERVING_ADMIN_KEY": ADMIN} if keyed else {}
    with live_server(built_repo, env=env) as (url, _):
        operations, failures = fuzz(url, keyed)
    assert operations >= 19  # every route in the schema
    assert not failures, "\n\n".join(failures)

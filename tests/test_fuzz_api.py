"""Schemathesis over the whole OpenAPI document, as every role: no 5xx, every answer documented.

The app serves its own document (app/openapi.py); schemathesis reads it from the WSGI app in
process and sends, for every operation and every role (anonymous, trainee, platform, auditor,
admin), a few generated requests that fit the document and a few that break it. Each answer
must not be a server error and must conform to the document: a documented status code,
content type, headers and body. The examples are derandomised, so a run is repeatable; set
FUZZ_EXAMPLES (per operation, role and mode) or FUZZ_SEED to look further.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import hypothesis
import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.extensions import db
from app.identity import service as identity
from app.identity.models import Role, User
from tests.conftest import bearer, make_platform, make_staff, make_trainee

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "6"))
SEED = os.environ.get("FUZZ_SEED")
ROLES = ("anonymous", "trainee", "platform", "auditor", "admin")
# Time allowed for one database's run on a busy 2-core machine; a run over it is a defect too.
BUDGET_S = 150

# Caption files are documented as WebVTT or SubRip: both are text to send.
schemathesis.serializer.alias("application/x-subrip", "text/plain")


def not_a_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    assert response.status_code < 500, f"server error {response.status_code}"
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def user_token(app: Flask, user_id: int) -> str:
    with app.test_request_context():
        user = db.session.get(User, user_id)
        assert user is not None
        token, _ = identity.issue_token(user, ttl_s=3600, label="fuzz")
        db.session.commit()
        return token


def credentials(app: Flask) -> dict[str, Callable[[], dict[str, str]]]:
    """For each role, a function giving fresh headers (the fuzzer may revoke a token)."""
    trainee = make_trainee(app)
    auditor = make_staff(app, Role.AUDITOR, "auditor1")
    admin = make_staff(app, Role.ADMIN, "admin1")
    return {
        "anonymous": dict,
        "trainee": lambda: bearer(user_token(app, trainee)),
        "platform": lambda: bearer(make_platform(app, name=f"平台{time.monotonic_ns()}")),
        "auditor": lambda: bearer(user_token(app, auditor)),
        "admin": lambda: bearer(user_token(app, admin)),
    }


def fuzz_operation(
    operation: Any, role: str, headers: dict[str, str], found: dict[str, list[str]]
) -> None:
    strategy = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @hypothesis.settings(
        max_examples=EXAMPLES * 2,
        deadline=None,
        database=None,
        derandomize=SEED is None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        verbosity=hypothesis.Verbosity.quiet,
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call(headers=headers)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (AssertionError, FailureGroup) as failure:  # recorded: shrinking costs minutes
            body = response.content[:300].decode("utf-8", "replace")
            kind = f"{case.method} {case.path} -> {response.status_code}"
            found.setdefault(kind, []).append(
                f"[{role}] {case.method} {case.formatted_path} -> {response.status_code} "
                f"{body}\n    {str(failure).strip()[:600]}\n    {case.as_curl_command()[:400]}"
            )

    if SEED is not None:
        run = hypothesis.seed(int(SEED))(run)
    run()


@pytest.mark.slow
def test_every_operation_as_every_role_answers_as_documented_without_server_errors(fresh_app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fresh_app)
    headers_for = credentials(fresh_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30  # the whole document, not a part of it
    found: dict[str, list[str]] = {}  # by operation and status: one example of each
    started = time.monotonic()
    for operation in operations:
        for role in ROLES:
            fuzz_operation(operation, role, headers_for[role](), found)
    elapsed = time.monotonic() - started
    total = sum(len(examples) for examples in found.values())
    assert not found, f"{total} problems of {len(found)} kinds:\n" + "\n".join(
        f"{kind} ({len(examples)}x): {examples[0]}" for kind, examples in found.items()
    )
    assert elapsed < BUDGET_S, f"fuzzing took {elapsed:.0f} s"


@pytest.fixture(autouse=True)
def _quiet_logs(caplog):
    # Refused requests are logged at warning level by design; keep the output readable.
    caplog.set_level("ERROR")

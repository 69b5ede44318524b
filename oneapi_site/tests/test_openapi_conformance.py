"""schemathesis against `/openapi.json` on the live gateway: the sandbox, discovery, MCP and
management routes (and the DRF `/v1` views), with a relay key and a management access token.
No 500s, and every response matches the document (status, content type, body schema).

The hot relay POSTs are left out (they would try upstream channels; the relay's own tests cover
them), and so are `GET /api/user/token` and `DELETE /api/user/self`, which would end the access
token this run uses.
Examples are bounded so that the run stays well under a minute.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

SCOPE = r"^/(sandbox/|\.well-known/|openapi\.json|docs|llms\.txt|developer-resources|mcp|api/|v1/models|v1/responses/)"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 6
_ADDRESSES = itertools.count()


@dataclass(frozen=True)
class Credentials:
    relay_key: str
    access_token: str

    def headers_for(self, path: str) -> dict[str, str]:
        if path.startswith("/sandbox/"):
            # A fresh client address per request (uvicorn trusts X-Forwarded-For from loopback), so the
            # sandbox's per-address limit does not turn this run into 429s, nor leave other tests limited.
            # (A counter, not `random`: Hypothesis seeds `random` the same way for every example.)
            n = next(_ADDRESSES)
            return {"X-Forwarded-For": f"198.19.{n // 250 % 256}.{n % 250 + 1}"}
        if path.startswith("/api/"):
            return {"Authorization": self.access_token}
        if path.startswith(("/v1/", "/mcp")):
            return {"Authorization": f"Bearer {self.relay_key}"}
        return {}


@pytest.fixture
def credentials(make_user: Any, make_key: Any) -> Credentials:
    from accounts.services import access_token_regenerate

    # Two users: whatever the run does to the manager's own keys (PUT/DELETE /api/token/...) leaves
    # the relay key alone (tenant isolation), so /v1 and /mcp stay reachable throughout.
    manager, relay_user = make_user(quota=10_000_000), make_user(quota=10_000_000)
    _, relay_key = make_key(relay_user)
    return Credentials(relay_key=relay_key, access_token=access_token_regenerate(user=manager))


@pytest.fixture
def gateway_schema(live_gateway: Any) -> Any:
    return schemathesis.openapi.from_url(f"{live_gateway.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("gateway_schema")


@pytest.mark.django_db(transaction=True)
@schema.include(path_regex=SCOPE).exclude(path="/api/user/token").exclude(path="/api/user/self", method="DELETE").parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_responses_conform_to_the_document(case: Any, credentials: Credentials) -> None:
    case.call_and_validate(headers=credentials.headers_for(case.path), checks=CHECKS, timeout=20)

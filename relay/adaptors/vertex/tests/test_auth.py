"""Vertex AI access tokens: credentials parsing, and the token cache against the fake's real
OAuth endpoint (a JWT-bearer grant signed with a key generated for the test)."""

from __future__ import annotations

import asyncio
import datetime
import json

import pytest

from fakeprovider.process import FakeProvider
from relay.adaptors.vertex.auth import CredentialsError, TokenCache, credentials_info, project_id

from .keys import service_account, service_account_json


def token_requests(fp: FakeProvider) -> list[dict]:
    return [r for r in fp.requests() if r["path"].endswith("/token")]


# ------------------------------------------------------------------------------------ parsing


def test_credentials_come_from_the_key_or_config_vertex_ai_adc():
    info = service_account("https://oauth2.googleapis.com/token")
    assert credentials_info(json.dumps(info), {}) == info
    assert credentials_info("", {"vertex_ai_adc": json.dumps(info)}) == info  # where the original kept it
    assert credentials_info("unused", {"vertex_ai_adc": info}) == info
    with pytest.raises(CredentialsError, match="service-account JSON"):
        credentials_info("sk-not-json", {})
    with pytest.raises(CredentialsError, match="not valid JSON"):
        credentials_info("{broken", {})


def test_project_from_config_else_from_the_key():
    info = service_account("https://oauth2.googleapis.com/token", project="from-key")
    assert project_id(info, {}) == "from-key"
    assert project_id(info, {"vertex_ai_project_id": " chosen "}) == "chosen"
    with pytest.raises(CredentialsError, match="vertex_ai_project_id"):
        project_id({"type": "service_account"}, {})


def test_unsupported_or_broken_credentials_are_refused():
    cache = TokenCache()
    with pytest.raises(CredentialsError, match="not supported"):
        asyncio.run(cache.token(1, {"type": "external_account", "credential_source": {"file": "/etc/passwd"}}))
    broken = {**service_account("https://oauth2.googleapis.com/token"), "private_key": "not a key"}
    with pytest.raises(CredentialsError, match="not usable"):
        asyncio.run(cache.token(1, broken))


# ------------------------------------------------------------------------------------ against the fake


def test_ten_concurrent_requests_refresh_once(fake_provider: FakeProvider):
    fake_provider.clear()
    cache = TokenCache()
    info = service_account(fake_provider.base_url + "/token")

    async def main() -> list[str]:
        return await asyncio.gather(*(cache.token(7, info) for _ in range(10)))

    tokens = asyncio.run(main())
    assert len(set(tokens)) == 1 and tokens[0].startswith("fake-vertex-token-")
    grants = token_requests(fake_provider)
    assert len(grants) == 1
    assert grants[0]["body"]["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert grants[0]["body"]["assertion"].count(".") == 2

    # Later requests (another event loop, as in a new test or worker) use the cached token.
    assert asyncio.run(cache.token(7, info)) == tokens[0]
    assert len(token_requests(fake_provider)) == 1


def test_an_expiring_token_is_refreshed(fake_provider: FakeProvider):
    fake_provider.clear()
    cache = TokenCache()
    info = service_account(fake_provider.base_url + "/token")
    first = asyncio.run(cache.token(8, info))
    entry = next(iter(cache._entries.values()))
    # Two minutes left: inside google-auth's refresh margin, so the token counts as expired.
    entry.credentials.expiry = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + datetime.timedelta(minutes=2)
    second = asyncio.run(cache.token(8, info))
    assert second != first and len(token_requests(fake_provider)) == 2


def test_a_changed_key_gets_new_credentials_and_drops_the_old(fake_provider: FakeProvider):
    cache = TokenCache()
    old = service_account(fake_provider.base_url + "/token", email="old@test-project.iam.gserviceaccount.com")
    new = service_account(fake_provider.base_url + "/token", email="new@test-project.iam.gserviceaccount.com")
    asyncio.run(cache.token(9, old))
    asyncio.run(cache.token(9, new))
    asyncio.run(cache.token(10, old))
    assert len(cache._entries) == 2 and {k[0] for k in cache._entries} == {9, 10}


def test_a_refused_grant_is_a_credentials_error(fake_provider: FakeProvider):
    cache = TokenCache()
    info = service_account(fake_provider.url("/token", "401"))  # the fake answers invalid_client
    with pytest.raises(CredentialsError, match="invalid_client"):
        asyncio.run(cache.token(11, info))


def test_an_unreachable_token_endpoint_is_a_credentials_error():
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cache = TokenCache()
    with pytest.raises(CredentialsError, match="could not get"):
        asyncio.run(cache.token(12, service_account(f"http://127.0.0.1:{port}/token")))


def test_pretty_printed_key_json_works(fake_provider: FakeProvider):
    info = credentials_info(service_account_json(fake_provider.base_url + "/token"), {})
    assert asyncio.run(TokenCache().token(13, info)).startswith("fake-vertex-token-")


def test_a_failed_refresh_is_remembered_briefly(fake_provider: FakeProvider):
    fake_provider.clear()
    cache = TokenCache()
    info = service_account(fake_provider.url("/token", "401"))

    async def five() -> list[BaseException | str]:
        return await asyncio.gather(*(cache.token(14, info) for _ in range(5)), return_exceptions=True)

    results = asyncio.run(five())
    assert all(isinstance(r, CredentialsError) for r in results)
    assert len(token_requests(fake_provider)) == 1  # the queued callers did not ask again
    next(iter(cache._entries.values())).failed_until = 0.0  # as if FAILURE_TTL had passed
    with pytest.raises(CredentialsError):
        asyncio.run(cache.token(14, info))  # the failure has expired: the endpoint is asked again
    assert len(token_requests(fake_provider)) == 2

"""The fake provider's Azure OpenAI and Vertex AI modes, over real HTTP (no Django, no google-auth:
the JWT is signed here with `cryptography`)."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from functools import cache
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from fakeprovider.process import FakeProvider
from fakeprovider.tokens import count_tokens
from fakeprovider.vertex import GOOGLE_AUDIENCE, check_assertion

USER = [{"role": "user", "content": "Hello there, how are you today?"}]
REPLY = "Fake reply to: Hello there, how are you today?"
AZURE = {"api-key": "azure-secret", "Content-Type": "application/json"}
DEPLOYMENT = "/openai/deployments/gpt4o-prod"
VERSION = "?api-version=2024-10-21"
GEMINI_PATH = "/v1/projects/p1/locations/us-central1/publishers/google/models/gemini-2.5-flash"
CLAUDE_PATH = "/v1/projects/p1/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929"


def call(fp: FakeProvider, path: str, body: Any, headers: dict[str, str], scenario: str | None = None) -> tuple[int, bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(fp.url(path, scenario), data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def sse_data(raw: bytes) -> list[Any]:
    out = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data: "):
                payload = line[6:]
                out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


# ------------------------------------------------------------------------------------ Azure


def test_azure_deployment_chat_answers_like_the_chat_mode(fake_provider: FakeProvider):
    status, raw = call(fake_provider, DEPLOYMENT + "/chat/completions" + VERSION, {"messages": USER}, AZURE)
    assert status == 200, raw
    body = json.loads(raw)
    assert body["model"] == "gpt4o-prod"  # no model in the body: the deployment answers
    assert body["choices"][0]["message"]["content"] == REPLY
    assert body["prompt_filter_results"][0]["content_filter_results"]["hate"]["filtered"] is False
    assert body["usage"]["completion_tokens"] == count_tokens(REPLY)
    recorded = fake_provider.requests()[-1]
    assert recorded["path"] == DEPLOYMENT + "/chat/completions" and recorded["query"] == VERSION[1:]
    assert recorded["headers"]["api-key"] == "azure-secret"


def test_azure_stream_opens_with_the_content_filter_chunk(fake_provider: FakeProvider):
    body = {"messages": USER, "stream": True, "stream_options": {"include_usage": True}}
    status, raw = call(fake_provider, DEPLOYMENT + "/chat/completions" + VERSION, body, AZURE)
    assert status == 200
    chunks = sse_data(raw)
    assert chunks[0]["choices"] == [] and chunks[0]["model"] == "" and "prompt_filter_results" in chunks[0]
    assert chunks[-1] == "[DONE]" and chunks[-2]["usage"]["completion_tokens"] == count_tokens(REPLY)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[1:-1] if c["choices"])
    assert text == REPLY


def test_azure_needs_the_api_key_header_and_the_api_version(fake_provider: FakeProvider):
    path = DEPLOYMENT + "/chat/completions"
    status, raw = call(fake_provider, path + VERSION, {"messages": USER}, {"Authorization": "Bearer azure-secret"})
    assert status == 401 and json.loads(raw)["error"]["code"] == "401"
    status, raw = call(fake_provider, path, {"messages": USER}, AZURE)
    assert status == 404 and json.loads(raw)["error"]["message"] == "Resource not found"


def test_azure_embeddings_and_the_v1_surface(fake_provider: FakeProvider):
    status, raw = call(fake_provider, "/openai/deployments/emb/embeddings" + VERSION, {"input": "hi", "dimensions": 4}, AZURE)
    assert status == 200 and len(json.loads(raw)["data"][0]["embedding"]) == 4 and json.loads(raw)["model"] == "emb"
    # The v1 API: model in the body, no api-version, the key as api-key or as a bearer token.
    bearer = {"Authorization": "Bearer azure-secret", "Content-Type": "application/json"}
    status, raw = call(fake_provider, "/openai/v1/chat/completions", {"model": "gpt4o-prod", "messages": USER}, bearer)
    assert status == 200 and json.loads(raw)["choices"][0]["message"]["content"] == REPLY
    status, raw = call(fake_provider, "/openai/v1/embeddings", {"model": "emb", "input": ["a", "b"]}, AZURE)
    assert status == 200 and len(json.loads(raw)["data"]) == 2


def test_azure_scenarios_and_validation(fake_provider: FakeProvider):
    path = DEPLOYMENT + "/chat/completions" + VERSION
    status, raw = call(fake_provider, path, {"messages": USER}, AZURE, scenario="429")
    assert status == 429 and json.loads(raw)["error"]["code"] == "429"
    status, raw = call(fake_provider, path, {"messages": []}, AZURE)
    assert status == 400 and json.loads(raw)["error"]["param"] == "messages"
    status, raw = call(fake_provider, path, {"messages": USER, "max_tokens": 3}, AZURE, scenario="words=20")
    assert status == 200 and json.loads(raw)["choices"][0]["finish_reason"] == "length"


def test_azure_responses_answer_like_the_responses_mode(fake_provider: FakeProvider):
    body = {"model": "gpt4o-prod", "input": "Hello there, how are you today?"}
    status, raw = call(fake_provider, "/openai/v1/responses", body, AZURE)
    assert status == 200, raw
    answer = json.loads(raw)
    assert answer["object"] == "response" and answer["output"][-1]["content"][0]["text"] == REPLY
    status, raw = call(fake_provider, "/openai/v1/responses", {**body, "stream": True}, AZURE)
    assert status == 200 and b"event: response.completed" in raw
    # The dated preview surface needs its api-version; neither takes a request without a key.
    assert call(fake_provider, "/openai/responses", body, AZURE)[0] == 404
    assert call(fake_provider, "/openai/responses?api-version=2025-04-01-preview", body, AZURE)[0] == 200
    assert call(fake_provider, "/openai/v1/responses", body, {"Content-Type": "application/json"})[0] == 401


def test_azure_foundry_claude_answers_like_the_anthropic_mode(fake_provider: FakeProvider):
    headers = {"x-api-key": "azure-secret", "anthropic-version": "2023-06-01", "Content-Type": "application/json"}
    body = {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": USER}
    status, raw = call(fake_provider, "/anthropic/v1/messages", body, headers)
    assert status == 200, raw
    assert json.loads(raw)["content"] == [{"type": "text", "text": REPLY}]
    status, raw = call(fake_provider, "/anthropic/v1/messages", body, {"Content-Type": "application/json"})
    assert status == 401 and json.loads(raw)["error"]["type"] == "authentication_error"


# ------------------------------------------------------------------------------------ Vertex: OAuth


@cache
def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    signing_input = _b64(json.dumps(header or {"alg": "RS256", "typ": "JWT"}).encode()) + "." + _b64(json.dumps(claims).encode())
    signature = _key().sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + _b64(signature)


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": "sa@p1.iam.gserviceaccount.com", "scope": "https://www.googleapis.com/auth/cloud-platform",
            "aud": GOOGLE_AUDIENCE, "iat": now, "exp": now + 3600}
    return {**base, **changes}


def grant(fp: FakeProvider, form: dict[str, str], scenario: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    status, raw = call(fp, "/token", urllib.parse.urlencode(form).encode(), headers, scenario)
    return status, json.loads(raw)


def access_token(fp: FakeProvider) -> str:
    status, body = grant(fp, {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": jwt(claims())})
    assert status == 200, body
    return body["access_token"]


def test_token_endpoint_grants_a_well_formed_jwt(fake_provider: FakeProvider):
    status, body = grant(fake_provider, {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": jwt(claims())})
    assert status == 200 and body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["access_token"].startswith("fake-vertex-token-")
    # Its own URL is an acceptable audience too; tokens are numbered, so never repeat.
    own = jwt(claims(aud=fake_provider.base_url + "/token"))
    status, again = grant(fake_provider, {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": own})
    assert status == 200 and again["access_token"] != body["access_token"]


@pytest.mark.parametrize(("assertion", "reason"), [
    ("only.two", "reasonable timeframe"),
    ("not-base64!.x.y", "base64url"),
    (None, "audience"),  # built below: a foreign audience
    ("expired", "short-lived"),
    ("hs256", "RS256"),
])
def test_token_endpoint_refuses_malformed_jwts(fake_provider: FakeProvider, assertion: str | None, reason: str):
    if assertion is None:
        assertion = jwt(claims(aud="https://elsewhere.example/token"))
    elif assertion == "expired":
        assertion = jwt(claims(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600))
    elif assertion == "hs256":
        assertion = jwt(claims(), {"alg": "HS256"})
    status, body = grant(fake_provider, {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion})
    assert status == 400 and body["error"] == "invalid_grant" and reason in body["error_description"]


def test_token_endpoint_grant_types_and_forced_errors(fake_provider: FakeProvider):
    status, body = grant(fake_provider, {"grant_type": "client_credentials"})
    assert status == 400 and body["error"] == "unsupported_grant_type"
    refresh = {"grant_type": "refresh_token", "refresh_token": "1//r", "client_id": "c", "client_secret": "s"}
    status, body = grant(fake_provider, refresh)
    assert status == 200 and body["access_token"].startswith("fake-vertex-token-")
    status, body = grant(fake_provider, refresh, scenario="401")
    assert status == 401 and body["error"] == "invalid_client"


def test_check_assertion_unit():
    now = time.time()
    good = jwt(claims(iat=int(now), exp=int(now) + 3600))
    assert check_assertion(good, "http://x/token", now) is None
    assert "short-lived" in check_assertion(jwt(claims(iat=int(now), exp=int(now) + 7200)), "http://x/token", now)
    assert "missing" in check_assertion(jwt({k: v for k, v in claims().items() if k != "scope"}), "http://x/token", now)


# ------------------------------------------------------------------------------------ Vertex: models


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "Hello there, how are you today?"}]}]}
CLAUDE_BODY = {"anthropic_version": "vertex-2023-10-16", "max_tokens": 100, "messages": USER}


def test_vertex_models_need_an_issued_token(fake_provider: FakeProvider):
    for path, body in ((GEMINI_PATH + ":generateContent", GEMINI_BODY), (CLAUDE_PATH + ":rawPredict", CLAUDE_BODY)):
        for headers in ({"Content-Type": "application/json"}, bearer("ya29.real-looking"), {"x-goog-api-key": "AIza"}):
            status, raw = call(fake_provider, path, body, headers)
            assert status == 401 and json.loads(raw)["error"]["status"] == "UNAUTHENTICATED"


def test_vertex_gemini_answers_like_the_gemini_mode(fake_provider: FakeProvider):
    token = access_token(fake_provider)
    status, raw = call(fake_provider, GEMINI_PATH + ":generateContent", GEMINI_BODY, bearer(token))
    assert status == 200, raw
    body = json.loads(raw)
    assert body["candidates"][0]["content"]["parts"][0]["text"] == REPLY
    assert body["modelVersion"] == "gemini-2.5-flash" and body["usageMetadata"]["candidatesTokenCount"] == count_tokens(REPLY)
    status, raw = call(fake_provider, GEMINI_PATH + ":streamGenerateContent?alt=sse", GEMINI_BODY, bearer(token))
    chunks = sse_data(raw)
    assert status == 200 and "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == REPLY
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_vertex_gemini_errors_are_googles(fake_provider: FakeProvider):
    token = access_token(fake_provider)
    status, raw = call(fake_provider, GEMINI_PATH + ":generateContent", GEMINI_BODY, bearer(token), scenario="429")
    assert status == 429 and json.loads(raw)["error"]["status"] == "RESOURCE_EXHAUSTED"
    status, raw = call(fake_provider, GEMINI_PATH + ":countEverything", GEMINI_BODY, bearer(token))
    assert status == 404
    status, raw = call(fake_provider, GEMINI_PATH + ":generateContent", {"contents": []}, bearer(token))
    assert status == 400 and json.loads(raw)["error"]["status"] == "INVALID_ARGUMENT"


def test_vertex_claude_answers_messages(fake_provider: FakeProvider):
    token = access_token(fake_provider)
    status, raw = call(fake_provider, CLAUDE_PATH + ":rawPredict", CLAUDE_BODY, bearer(token))
    assert status == 200, raw
    body = json.loads(raw)
    assert body["type"] == "message" and body["content"] == [{"type": "text", "text": REPLY}]
    assert body["model"] == "claude-sonnet-4-5@20250929" and body["stop_reason"] == "end_turn"
    assert body["usage"]["output_tokens"] == count_tokens(REPLY)


def test_vertex_claude_stream_events(fake_provider: FakeProvider):
    token = access_token(fake_provider)
    status, raw = call(fake_provider, CLAUDE_PATH + ":streamRawPredict", {**CLAUDE_BODY, "stream": True}, bearer(token))
    assert status == 200
    events = sse_data(raw)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta") == REPLY
    assert events[-2]["usage"]["output_tokens"] == count_tokens(REPLY)
    assert b"event: message_start\n" in raw


def test_vertex_claude_validates_the_vertex_body(fake_provider: FakeProvider):
    token = access_token(fake_provider)
    for body, message in (
        ({k: v for k, v in CLAUDE_BODY.items() if k != "anthropic_version"}, "anthropic_version"),
        ({**CLAUDE_BODY, "model": "claude-sonnet-4-5"}, "model"),
        ({k: v for k, v in CLAUDE_BODY.items() if k != "max_tokens"}, "max_tokens"),
    ):
        status, raw = call(fake_provider, CLAUDE_PATH + ":rawPredict", body, bearer(token))
        error = json.loads(raw)
        assert status == 400 and error["type"] == "error" and error["error"]["message"].startswith(message)


def test_vertex_claude_tool_use_and_truncation(fake_provider: FakeProvider):
    token = access_token(fake_provider)
    tool = {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    status, raw = call(fake_provider, CLAUDE_PATH + ":rawPredict", {**CLAUDE_BODY, "tools": [tool]}, bearer(token))
    body = json.loads(raw)
    assert status == 200 and body["stop_reason"] == "tool_use"
    assert body["content"][0]["type"] == "tool_use" and body["content"][0]["name"] == "get_weather"
    assert isinstance(body["content"][0]["input"]["city"], str)
    status, raw = call(fake_provider, CLAUDE_PATH + ":rawPredict", {**CLAUDE_BODY, "max_tokens": 3}, bearer(token))
    assert status == 200 and json.loads(raw)["stop_reason"] == "max_tokens"
